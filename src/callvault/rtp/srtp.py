"""SRTP/SRTCP receive (RFC 3711, keys from SDES a=crypto per RFC 4568) via pylibsrtp.

``SrtpReceiver`` holds one inbound libsrtp session for one negotiated key: it accepts
any SSRC (a recorder does not know the sender's SSRC in advance) and turns protected
packets back into plain RTP / RTCP. Every failure (authentication, replay, a packet
libsrtp cannot take) raises ``SrtpError``; ``replay`` tells a repeated packet apart from
a forged or corrupted one. A receiver is not thread-safe: pylibsrtp reuses one buffer.
"""

from __future__ import annotations

from typing import Final

from pylibsrtp import Error as _LibsrtpError
from pylibsrtp import Policy, Session

__all__ = ["SRTP_SUITES", "SrtpError", "SrtpReceiver"]

#: SDES crypto-suite name -> (libsrtp profile, master key + salt length in bytes).
SRTP_SUITES: Final[dict[str, tuple[int, int]]] = {
    "AES_CM_128_HMAC_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    "AES_CM_128_HMAC_SHA1_32": (Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
    "AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),  # RFC 7714
    "AEAD_AES_256_GCM": (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44),  # RFC 7714
}


class SrtpError(ValueError):
    """A protected packet could not be accepted (or the key/suite is unusable)."""

    def __init__(self, message: str, *, replay: bool = False) -> None:
        super().__init__(message)
        self.replay = replay


class SrtpReceiver:
    """Unprotects SRTP and SRTCP packets sent with one master key and salt."""

    __slots__ = ("_session", "suite")

    def __init__(self, suite: str, key_salt: bytes, *, replay_window: int = 1024) -> None:
        """``replay_window`` (64..32767 packets) is larger than libsrtp's 128 so that
        packets reordered in a capture can still be decrypted when rendering it."""
        try:
            profile, length = SRTP_SUITES[suite]
        except KeyError:
            raise SrtpError(f"unsupported SRTP crypto suite {suite!r}") from None
        if len(key_salt) != length:
            raise SrtpError(
                f"{suite} needs a {length}-byte master key and salt, got {len(key_salt)}"
            )
        if not 64 <= replay_window < 0x8000:
            raise SrtpError(f"SRTP replay window {replay_window} is not in 64..32767")
        self.suite = suite
        policy = Policy(
            key=bytes(key_salt), ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile
        )
        policy.window_size = replay_window
        self._session = Session(policy=policy)

    def unprotect(self, data: bytes) -> bytes:
        """The plain RTP packet inside an SRTP packet."""
        try:
            return bytes(self._session.unprotect(bytes(data)))
        except (_LibsrtpError, ValueError) as exc:
            raise _error("SRTP", exc) from None

    def unprotect_rtcp(self, data: bytes) -> bytes:
        """The plain compound RTCP packet inside an SRTCP packet."""
        try:
            return bytes(self._session.unprotect_rtcp(bytes(data)))
        except (_LibsrtpError, ValueError) as exc:
            raise _error("SRTCP", exc) from None

    def __repr__(self) -> str:
        return f"<SrtpReceiver {self.suite}>"


def _error(kind: str, exc: Exception) -> SrtpError:
    reason = str(exc)
    return SrtpError(f"{kind} unprotect failed: {reason}", replay=reason.startswith("replay"))
