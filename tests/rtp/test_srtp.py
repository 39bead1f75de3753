"""SRTP receive against packets protected by a libsrtp sender with the same key."""

from __future__ import annotations

import pytest
from pylibsrtp import Policy, Session

from callvault.rtp.packet import RtpPacket, parse_rtp
from callvault.rtp.rtcp import Bye, ReceiverReport, parse_rtcp
from callvault.rtp.srtp import SRTP_SUITES, SrtpError, SrtpReceiver

SUITES = sorted(SRTP_SUITES)


def key_for(suite: str) -> bytes:
    return bytes(range(1, SRTP_SUITES[suite][1] + 1))


def sender(suite: str, key: bytes | None = None) -> Session:
    profile = SRTP_SUITES[suite][0]
    policy = Policy(
        key=key or key_for(suite), ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
    )
    return Session(policy=policy)


def rtp(seq: int, ssrc: int = 0x5EED) -> bytes:
    return bytes(RtpPacket(0, seq, 160 * seq, ssrc, payload=bytes([seq & 0xFF]) * 160))


@pytest.mark.parametrize("suite", SUITES)
def test_rtp_round_trip(suite: str) -> None:
    tx = sender(suite)
    rx = SrtpReceiver(suite, key_for(suite))
    for seq in range(65530, 65536):  # crosses into the next rollover counter value
        protected = tx.protect(rtp(seq))
        assert protected != rtp(seq)
        assert rx.unprotect(protected) == rtp(seq)
    wrapped = tx.protect(rtp(0))
    assert parse_rtp(rx.unprotect(wrapped)).sequence_number == 0
    assert repr(rx) == f"<SrtpReceiver {suite}>"


@pytest.mark.parametrize("suite", SUITES)
def test_rtcp_round_trip(suite: str) -> None:
    tx = sender(suite)
    rx = SrtpReceiver(suite, key_for(suite))
    compound = bytes(ReceiverReport(0x5EED)) + bytes(Bye((0x5EED,), "done"))
    assert parse_rtcp(rx.unprotect_rtcp(tx.protect_rtcp(compound))) == [
        ReceiverReport(0x5EED),
        Bye((0x5EED,), "done"),
    ]


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_packet_fails_authentication(suite: str) -> None:
    tx = sender(suite)
    rx = SrtpReceiver(suite, key_for(suite))
    protected = bytearray(tx.protect(rtp(1)))
    protected[20] ^= 0x01
    with pytest.raises(SrtpError) as info:
        rx.unprotect(bytes(protected))
    assert str(info.value) == "SRTP unprotect failed: authentication failure"
    assert info.value.replay is False


def test_wrong_key_fails_authentication() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    tx = sender(suite, key=bytes(30))
    with pytest.raises(SrtpError, match="authentication failure"):
        SrtpReceiver(suite, key_for(suite)).unprotect(tx.protect(rtp(1)))
    with pytest.raises(SrtpError, match=r"^SRTCP unprotect failed: authentication failure$"):
        SrtpReceiver(suite, key_for(suite)).unprotect_rtcp(
            tx.protect_rtcp(bytes(ReceiverReport(1)))
        )


def test_replayed_packet_is_flagged_as_replay() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    tx = sender(suite)
    rx = SrtpReceiver(suite, key_for(suite))
    protected = tx.protect(rtp(1))
    rx.unprotect(protected)
    with pytest.raises(SrtpError) as info:
        rx.unprotect(protected)
    assert str(info.value) == "SRTP unprotect failed: replay check failed (bad index)"
    assert info.value.replay is True


def test_late_packets_within_the_wide_replay_window_are_accepted() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    tx = sender(suite)
    protected = [tx.protect(rtp(seq)) for seq in range(1, 401)]
    rx = SrtpReceiver(suite, key_for(suite))  # window 1024; libsrtp's default is 128
    for packet in protected[1:]:
        rx.unprotect(packet)
    assert parse_rtp(rx.unprotect(protected[0])).sequence_number == 1
    narrow = SrtpReceiver(suite, key_for(suite), replay_window=128)
    for packet in protected[1:]:
        narrow.unprotect(packet)
    with pytest.raises(SrtpError) as info:
        narrow.unprotect(protected[0])
    assert info.value.replay is True


def test_any_ssrc_is_accepted() -> None:
    suite = "AEAD_AES_128_GCM"
    tx = sender(suite)
    rx = SrtpReceiver(suite, key_for(suite))
    for ssrc in (1, 2, 0xFFFFFFFF):
        assert rx.unprotect(tx.protect(rtp(5, ssrc))) == rtp(5, ssrc)


@pytest.mark.parametrize(
    ("suite", "key", "message"),
    [
        ("F8_128_HMAC_SHA1_80", bytes(30), "unsupported SRTP crypto suite 'F8_128_HMAC_SHA1_80'"),
        (
            "AES_CM_128_HMAC_SHA1_80",
            bytes(29),
            "AES_CM_128_HMAC_SHA1_80 needs a 30-byte master key and salt, got 29",
        ),
        (
            "AEAD_AES_128_GCM",
            bytes(30),
            "AEAD_AES_128_GCM needs a 28-byte master key and salt, got 30",
        ),
    ],
)
def test_bad_configuration(suite: str, key: bytes, message: str) -> None:
    with pytest.raises(SrtpError) as info:
        SrtpReceiver(suite, key)
    assert str(info.value) == message


def test_bad_replay_window() -> None:
    with pytest.raises(SrtpError, match=r"SRTP replay window 10 is not in 64\.\.32767"):
        SrtpReceiver("AES_CM_128_HMAC_SHA1_80", bytes(30), replay_window=10)


@pytest.mark.parametrize("data", [b"", b"\x80\x00", bytes(2000)])
def test_garbage_raises_srtp_error(data: bytes) -> None:
    rx = SrtpReceiver("AES_CM_128_HMAC_SHA1_32", bytes(30))
    with pytest.raises(SrtpError):
        rx.unprotect(data)
    with pytest.raises(SrtpError):
        rx.unprotect_rtcp(data)
