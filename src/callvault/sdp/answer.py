"""SDP offer/answer for a Session Recording Server (RFC 3264, RFC 7866 section 8).

The SRC offers one m-line per recorded stream, each with ``a=label``. For every m-line
``choose_streams`` decides whether the recorder takes it (``StreamChoice``) or refuses
it (``None``: not audio, no recordable codec, a transport we cannot receive, SRTP
without a key suite we support, or already refused with port 0). ``build_answer``
writes the answer: the same m-lines in the same order, refused ones with port 0 and
the offered formats (RFC 3264 6), accepted ones ``a=recvonly`` on our port with only
the chosen codec and its telephone-event/CN companions, the same label and ptime, and
our own ``a=crypto`` for SRTP streams. ``build_offer`` is for an INVITE that came
without SDP (RFC 7866 6.1.1): the SRS offers receive-only audio streams.

Nothing here allocates ports or keys: the caller passes them in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from callvault.sdp.codecs import Codec, choose_codec
from callvault.sdp.crypto import CryptoAttribute
from callvault.sdp.errors import SdpError
from callvault.sdp.session import Connection, MediaDescription, Origin, SessionDescription

__all__ = [
    "PLAIN_PROFILES",
    "SECURE_PROFILES",
    "SUPPORTED_CRYPTO_SUITES",
    "StreamChoice",
    "build_answer",
    "build_offer",
    "choose_streams",
    "require_usable",
]

# AVPF only adds RTCP feedback; a receive-only recorder can take it like AVP.
PLAIN_PROFILES = frozenset({"RTP/AVP", "RTP/AVPF"})
SECURE_PROFILES = frozenset({"RTP/SAVP", "RTP/SAVPF"})
# The SDES suites the SRTP layer (libsrtp via pylibsrtp) can decrypt.
SUPPORTED_CRYPTO_SUITES = (
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
)
_SESSION_USER = "callvault"


@dataclass(frozen=True, slots=True)
class StreamChoice:
    """What the recorder accepts for the offered m-line number ``index``.

    ``srtp`` is the offerer's crypto attribute whose key decrypts what it sends;
    ``remote_address`` is ``None`` when the SDP has no ``c=`` line (use the signalling
    source address). ``paused`` says no media is expected now (RFC 3264 hold).
    """

    index: int
    label: str | None
    codec: str
    payload_type: int
    clock_rate: int
    channels: int
    fmtp: str | None
    telephone_event_pt: int | None
    cn_pt: int | None
    srtp: CryptoAttribute | None
    paused: bool
    remote_address: str | None
    remote_port: int
    ptime: int | None = None


def choose_streams(offer: SessionDescription) -> list[StreamChoice | None]:
    """One entry per offered m-line, in order: a ``StreamChoice`` or ``None`` (refuse)."""
    return [_choose(index, media) for index, media in enumerate(offer.media)]


def require_usable(choices: list[StreamChoice | None]) -> None:
    """Raise ``SdpError`` 488 when the recorder can take none of the offered streams."""
    if not any(choice is not None for choice in choices):
        raise SdpError("No recordable audio stream in the SDP offer", status=488)


def _choose(index: int, media: MediaDescription) -> StreamChoice | None:
    if media.media.lower() != "audio" or media.port == 0:
        return None
    srtp: CryptoAttribute | None = None
    if media.proto.upper() in SECURE_PROFILES:
        srtp = _choose_crypto(media.crypto)
        if srtp is None:
            return None
    elif media.proto.upper() not in PLAIN_PROFILES:
        return None
    choice = choose_codec(media.codecs)
    if choice is None:
        return None
    voice = choice.codec
    connection = media.connection
    return StreamChoice(
        index=index,
        label=media.label,
        codec=voice.name,
        payload_type=voice.payload_type,
        clock_rate=voice.clock_rate,
        channels=voice.channels,
        fmtp=voice.fmtp,
        telephone_event_pt=_pt(choice.telephone_event),
        cn_pt=_pt(choice.comfort_noise),
        srtp=srtp,
        paused=media.is_paused,
        remote_address=connection.host if connection is not None else None,
        remote_port=media.port,
        ptime=media.ptime,
    )


def _pt(codec: Codec | None) -> int | None:
    return codec.payload_type if codec is not None else None


def _choose_crypto(offered: list[CryptoAttribute]) -> CryptoAttribute | None:
    # RFC 4568 7.1.1: the offerer lists its preference first; take the first we can use.
    for attribute in offered:
        if attribute.suite in SUPPORTED_CRYPTO_SUITES:
            return attribute
    return None


def _origin(address: str, session_id: int, session_version: int) -> Origin:
    connection = Connection.for_address(address)
    return Origin(
        _SESSION_USER,
        str(session_id),
        str(session_version),
        connection.nettype,
        connection.addrtype,
        address,
    )


def _answer_direction(offered: MediaDescription, choice: StreamChoice) -> str:
    # RFC 3264 6.1: the answer to inactive (or to recvonly, since we never send) is
    # inactive; a paused stream (hold address) is answered inactive too, and the SRC
    # sends a new offer when it resumes. Otherwise we only receive.
    if offered.direction in ("inactive", "recvonly") or choice.paused:
        return "inactive"
    return "recvonly"


def build_answer(
    offer: SessionDescription,
    choices: list[StreamChoice | None],
    *,
    address: str,
    ports: list[int],
    session_id: int,
    session_version: int,
    local_crypto: Callable[[CryptoAttribute], CryptoAttribute] | None = None,
) -> SessionDescription:
    """The SDP answer to ``offer`` given ``choose_streams(offer)``.

    ``ports`` has one port per offered m-line (the entries of refused m-lines are
    ignored), or one per accepted stream in m-line order. ``local_crypto``
    returns our own key for an SRTP stream from the offerer's chosen attribute; by
    default a fresh key is drawn from ``os.urandom`` with the same tag and suite.
    """
    if len(choices) != len(offer.media):
        raise ValueError(f"{len(choices)} choices for {len(offer.media)} m-lines")
    accepted = [c for c in choices if c is not None]
    if len(ports) == len(choices):
        per_line = list(ports)
    elif len(ports) == len(accepted):
        port_iter = iter(ports)
        per_line = [next(port_iter) if c is not None else 0 for c in choices]
    else:
        raise ValueError(
            f"{len(ports)} ports for {len(choices)} m-lines ({len(accepted)} accepted)"
        )
    make_key = local_crypto or _fresh_key
    media: list[MediaDescription] = []
    for offered, choice, port in zip(offer.media, choices, per_line, strict=True):
        if choice is None:
            media.append(_refused(offered))
        else:
            media.append(_accepted(offered, choice, port, make_key))
    return SessionDescription(
        origin=_origin(address, session_id, session_version),
        session_name="-",
        connection=Connection.for_address(address),
        lines=[("t", "0 0")],
        media=media,
    )


def _fresh_key(offered: CryptoAttribute) -> CryptoAttribute:
    return CryptoAttribute.generate(offered.tag, offered.suite, os.urandom)


def _refused(offered: MediaDescription) -> MediaDescription:
    attributes: list[tuple[str, str | None]] = []
    if offered.label is not None:
        attributes.append(("label", offered.label))
    formats = list(offered.formats) or ["0"]
    return MediaDescription(offered.media, 0, offered.proto, formats, attributes=attributes)


def _accepted(
    offered: MediaDescription,
    choice: StreamChoice,
    port: int,
    make_key: Callable[[CryptoAttribute], CryptoAttribute],
) -> MediaDescription:
    by_pt = {c.payload_type: c for c in offered.codecs}
    chosen = [by_pt[choice.payload_type]]
    for extra in (choice.telephone_event_pt, choice.cn_pt):
        if extra is not None:
            chosen.append(by_pt[extra])
    attributes: list[tuple[str, str | None]] = []
    for codec in chosen:
        attributes.append(("rtpmap", codec.rtpmap_value()))
        if codec.fmtp:
            attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    if choice.ptime is not None:
        attributes.append(("ptime", offered.attribute("ptime")))
    if choice.srtp is not None:
        ours = make_key(choice.srtp)
        if ours.tag != choice.srtp.tag or ours.suite != choice.srtp.suite:
            raise ValueError("local_crypto must keep the offered tag and suite")
        attributes.append(("crypto", str(ours)))
    attributes.append((_answer_direction(offered, choice), None))
    if choice.label is not None:
        attributes.append(("label", choice.label))
    return MediaDescription(
        offered.media,
        port,
        offered.proto,
        [str(c.payload_type) for c in chosen],
        attributes=attributes,
    )


# What the SRS offers when the SRC's INVITE has no SDP: (PT, rtpmap, fmtp).
_OFFERED_FORMATS: tuple[tuple[int, str, str | None], ...] = (
    (0, "PCMU/8000", None),
    (8, "PCMA/8000", None),
    (9, "G722/8000", None),
    (111, "opus/48000/2", None),
    (101, "telephone-event/8000", "0-16"),
)


def build_offer(
    labels: list[str],
    *,
    address: str,
    ports: list[int],
    session_id: int,
    session_version: int,
) -> SessionDescription:
    """A receive-only audio offer with one m-line per label (RFC 7866 6.1.1)."""
    if len(ports) != len(labels):
        raise ValueError(f"{len(ports)} ports for {len(labels)} labels")
    media: list[MediaDescription] = []
    for label, port in zip(labels, ports, strict=True):
        attributes: list[tuple[str, str | None]] = []
        for pt, mapping, fmtp in _OFFERED_FORMATS:
            attributes.append(("rtpmap", f"{pt} {mapping}"))
            if fmtp is not None:
                attributes.append(("fmtp", f"{pt} {fmtp}"))
        attributes.append(("recvonly", None))
        attributes.append(("label", label))
        formats = [str(pt) for pt, _, _ in _OFFERED_FORMATS]
        media.append(MediaDescription("audio", port, "RTP/AVP", formats, attributes=attributes))
    return SessionDescription(
        origin=_origin(address, session_id, session_version),
        session_name="-",
        connection=Connection.for_address(address),
        lines=[("t", "0 0")],
        media=media,
    )
