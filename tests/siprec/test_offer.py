"""Tests for callvault.siprec.offer: picking SDP and metadata out of a request body."""

from __future__ import annotations

import pytest

from callvault.sdp import SdpError
from callvault.sip.multipart import MultipartError
from callvault.siprec import MetadataError, OfferError, read_offer

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=label:1\r\n"
)
XML = (
    b"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
    b"<datamode>complete</datamode></recording>"
)


def multipart(*parts: tuple[str, bytes]) -> bytes:
    chunks = [
        b"--x\r\nContent-Type: " + ct.encode() + b"\r\n\r\n" + body + b"\r\n" for ct, body in parts
    ]
    return b"".join(chunks) + b"--x--\r\n"


def test_sdp_and_metadata() -> None:
    offer = read_offer(
        "multipart/mixed;boundary=x",
        multipart(
            ("application/rs-metadata+xml", XML),
            ("application/gtd", b"IAM,"),
            ("application/sdp", SDP),
        ),
    )
    assert offer.sdp is not None and offer.sdp.labels == ["1"]
    assert offer.sdp_raw == SDP
    assert offer.metadata is not None and offer.metadata.datamode == "complete"
    assert offer.metadata_raw == XML
    assert [p.mime_type for p in offer.parts] == [
        "application/rs-metadata+xml",
        "application/gtd",
        "application/sdp",
    ]
    assert [p.mime_type for p in offer.ignored_parts] == ["application/gtd"]
    assert repr(offer) == "<SiprecOffer sdp=True metadata=True parts=3 ignored=1>"


def test_second_sdp_part_is_ignored() -> None:
    offer = read_offer(
        "multipart/mixed;boundary=x", multipart(("application/sdp", SDP), ("application/sdp", SDP))
    )
    assert offer.sdp is not None
    assert len(offer.ignored_parts) == 1


def test_metadata_recognised_by_disposition() -> None:
    body = (
        b"--x\r\nContent-Type: application/xml\r\nContent-Disposition: recording-session\r\n\r\n"
        + XML
        + b"\r\n--x--"
    )
    offer = read_offer("multipart/mixed;boundary=x", body)
    assert offer.metadata is not None
    assert offer.sdp is None


def test_single_parts_and_empty_body() -> None:
    sdp_only = read_offer("application/sdp", SDP)
    assert (sdp_only.sdp is not None, sdp_only.metadata) == (True, None)
    metadata_only = read_offer("application/rs-metadata", XML, disposition="recording-session")
    assert (metadata_only.sdp, metadata_only.metadata is not None) == (None, True)
    assert metadata_only.parts[0].content_disposition == "recording-session"
    empty = read_offer("", b"")
    assert (empty.sdp, empty.metadata, empty.parts) == (None, None, ())


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason", "cause"),
    [
        (
            "text/plain",
            b"hello",
            415,
            "no application/sdp or rs-metadata body part (got text/plain)",
            None,
        ),
        (
            "multipart/mixed;boundary=x",
            multipart(("application/gtd", b"IAM,"), ("image/png", b"x")),
            415,
            "no application/sdp or rs-metadata body part (got application/gtd, image/png)",
            None,
        ),
        (
            "multipart/mixed",
            b"--x\r\n",
            400,
            "multipart body without a boundary parameter",
            MultipartError,
        ),
        ("application/sdp", b"hello", 400, "Bad SDP line 1: 'hello'", SdpError),
        (
            "application/rs-metadata+xml",
            b"<!DOCTYPE r><recording/>",
            400,
            "rs-metadata rejected: DTD/entity declarations are forbidden",
            MetadataError,
        ),
        (
            "multipart/mixed;boundary=x",
            multipart(("application/sdp", SDP), ("application/rs-metadata+xml", b"<recording>")),
            400,
            "rs-metadata rejected: not well-formed XML (no element found: line 1, column 11)",
            MetadataError,
        ),
    ],
)
def test_errors(
    content_type: str, body: bytes, status: int, reason: str, cause: type[Exception] | None
) -> None:
    with pytest.raises(OfferError) as info:
        read_offer(content_type, body)
    assert (info.value.status, info.value.reason, str(info.value)) == (status, reason, reason)
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)


def test_metadata_limits_are_passed_on() -> None:
    with pytest.raises(OfferError) as info:
        read_offer("application/rs-metadata+xml", XML, max_metadata_bytes=10)
    assert info.value.reason == f"rs-metadata rejected: {len(XML)} bytes exceeds the 10-byte limit"
