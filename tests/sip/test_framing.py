"""callvault.sip.framing: every framing case whole, byte by byte and with trailing data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.sip.errors import SipSyntaxError
from callvault.sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, StreamFramer
from callvault.sip.message import Request
from callvault.sip.parser import parse
from tests.corpus import SIPREC_CORPUS, TORTURE_CORPUS
from tests.sip.torture_expectations import EXPECTED, WIRE_FILES

OPTIONS = (
    b"OPTIONS sip:srs@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP src.example.com;branch=z9hG4bK1\r\n"
    b"To: <sip:srs@example.com>\r\n"
    b"From: <sip:src@example.com>;tag=1\r\n"
    b"Call-ID: f1@src\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)
INFO = (
    b"INFO sip:srs@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP src.example.com;branch=z9hG4bK2\r\n"
    b"To: <sip:srs@example.com>;tag=2\r\n"
    b"From: <sip:src@example.com>;tag=1\r\n"
    b"Call-ID: f1@src\r\n"
    b"CSeq: 2 INFO\r\n"
    b"Content-Type: text/plain\r\n"
    b"l: 12\r\n\r\n"
    b"hello\r\n\r\nyou"
)
SIPREC = sorted(p.read_bytes() for p in SIPREC_CORPUS.glob("*.sip"))

Item = bytes | SipSyntaxError


def _whole(data: bytes, size: int = 65535) -> list[Item]:
    return StreamFramer(size).feed(data)


def _bytewise(data: bytes, size: int = 65535) -> list[Item]:
    framer = StreamFramer(size)
    out: list[Item] = []
    for i in range(len(data)):
        out.extend(framer.feed(data[i : i + 1]))
    return out


def _reasons(items: list[Item]) -> list[bytes | tuple[str, int | None]]:
    return [(i.reason, i.status) if isinstance(i, SipSyntaxError) else i for i in items]


@pytest.mark.parametrize("feed", [_whole, _bytewise])
def test_messages_with_and_without_body(feed: object) -> None:
    assert callable(feed)
    assert feed(OPTIONS + INFO) == [OPTIONS, INFO]
    assert parse(INFO).body == b"hello\r\n\r\nyou"  # blank line inside the body is body


@pytest.mark.parametrize("feed", [_whole, _bytewise])
def test_keepalives_and_stray_crlfs(feed: object) -> None:
    assert callable(feed)
    stream = b"\r\n" + OPTIONS + KEEPALIVE_PING + b"\n" + INFO + b"\r\n\r\n\r\n"
    # The trailing single CRLF may still become a ping: it stays buffered.
    assert feed(stream) == [OPTIONS, KEEPALIVE_PING, INFO, KEEPALIVE_PING]
    assert KEEPALIVE_PONG == b"\r\n"


def test_trailing_partial_data_waits_for_more() -> None:
    framer = StreamFramer(65535)
    assert framer.feed(OPTIONS + INFO[:-3]) == [OPTIONS]
    assert framer.buffered == len(INFO) - 3
    assert framer.feed(INFO[-3:] + OPTIONS[:10]) == [INFO]
    assert framer.feed(OPTIONS[10:]) == [OPTIONS]
    assert framer.buffered == 0
    assert not framer.failed


def test_content_length_larger_than_received_waits() -> None:
    clerr = (TORTURE_CORPUS / "clerr.dat").read_bytes()
    framer = StreamFramer(65535)
    assert framer.feed(clerr) == []
    assert framer.buffered == len(clerr)  # RFC 4475 3.1.2.2: only wait on a stream


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"Content-Length: 0\r\n", b"", "Missing Content-Length header on a stream transport"),
        (b"Content-Length: 0", b"Content-Length: -999", "Malformed Content-Length"),
        (b"Content-Length: 0", b"Content-Length: five", "Malformed Content-Length"),
        (b"Content-Length: 0", b"Content-Length: 0\r\nl: 0", "Multiple Content-Length headers"),
        (b"Content-Length: 0", b"Content-Length: 99999999999", "Content-Length out of range"),
    ],
)
def test_bad_content_length_is_fatal(old: bytes, new: bytes, reason: str) -> None:
    bad = OPTIONS.replace(old, new)
    for feed in (_whole, _bytewise):
        items = feed(OPTIONS + bad + OPTIONS)
        assert _reasons(items) == [OPTIONS, (reason, 400)]
        error = items[1]
        assert isinstance(error, SipSyntaxError)
        assert error.fatal_for_stream
        assert error.partial is not None
        assert error.partial.call_id == "f1@src"


def test_framer_stops_after_a_fatal_error() -> None:
    framer = StreamFramer(65535)
    assert len(framer.feed(OPTIONS.replace(b"Content-Length: 0", b"l: x"))) == 1
    assert framer.failed
    assert framer.buffered == 0
    assert framer.feed(OPTIONS) == []


def test_header_section_longer_than_the_limit_is_513() -> None:
    framer = StreamFramer(200)
    items = framer.feed(OPTIONS.replace(b"\r\n\r\n", b"\r\nX: " + b"y" * 300))
    assert _reasons(items) == [("Message Too Large", 513)]
    error = items[0]
    assert isinstance(error, SipSyntaxError)
    assert error.fatal_for_stream
    assert error.partial is not None and error.partial.method == "OPTIONS"
    # Byte by byte the error comes as soon as the limit is passed.
    framer = StreamFramer(200)
    fed = 0
    for byte in OPTIONS.replace(b"\r\n\r\n", b"\r\nX: " + b"y" * 300):
        fed += 1
        if framer.feed(bytes([byte])):
            break
    assert fed == 201


def test_whole_message_longer_than_the_limit_is_513() -> None:
    big = INFO.replace(b"l: 12", b"l: 5000")
    assert _reasons(_whole(big, 1000)) == [("Message Too Large", 513)]
    assert _whole(INFO, len(INFO)) == [INFO]
    assert _reasons(_whole(INFO, len(INFO) - 1)) == [("Message Too Large", 513)]


def test_failing_responses_are_dropped_not_answered() -> None:
    response = OPTIONS.replace(b"OPTIONS sip:srs@example.com SIP/2.0", b"SIP/2.0 200 OK")
    items = _whole(response.replace(b"Content-Length: 0", b"Content-Length: x"))
    assert _reasons(items) == [("Malformed Content-Length", None)]
    assert _whole(response) == [response]


def test_lf_only_messages_are_framed() -> None:
    lf = OPTIONS.replace(b"\r\n", b"\n")
    assert _whole(lf + lf) == [lf, lf]
    assert _bytewise(lf + lf) == [lf, lf]


def _outcome(data: bytes) -> object:
    try:
        return parse(data)
    except SipSyntaxError as err:
        return (err.reason, err.status)


@pytest.mark.parametrize("name", [n for n in WIRE_FILES if n != "dblreq.dat"])
def test_torture_messages_over_a_stream(name: str) -> None:
    data = (TORTURE_CORPUS / name).read_bytes()
    if b"\r\nContent-Length" not in data and b"\r\nl:" not in data and b"\r\nL:" not in data:
        items = _whole(data)
        assert _reasons(items) == [("Missing Content-Length header on a stream transport", 400)]
        return
    if EXPECTED[name].reason in ("Malformed Content-Length", "Multiple Content-Length headers"):
        assert _reasons(_whole(data)) == [(EXPECTED[name].reason, 400)]
        return
    framed = _whole(data + OPTIONS)
    assert _reasons(framed) == _reasons(_bytewise(data + OPTIONS))
    if name == "baddn.dat":
        # The archive file has no blank line after its headers: on a stream the next
        # message's headers join its header section, until Content-Length repeats.
        assert _whole(data) == []
        assert _reasons(framed) == [("Multiple Content-Length headers", 400)]
        return
    if name == "clerr.dat":
        assert framed == []  # waits for 9999 body octets
        return
    assert framed[-1] == OPTIONS
    message = framed[0]
    assert isinstance(message, bytes)
    # The framer cuts exactly what the datagram parser reads: same message, same error.
    assert _outcome(message) == _outcome(data)


def test_dblreq_on_a_stream() -> None:
    # Over UDP the octets after the REGISTER are ignored. On a stream they are the
    # next message: an INVITE whose body is 2 octets longer than its Content-Length,
    # so the leftover "C\r\n\r\n" cannot be framed.
    data = (TORTURE_CORPUS / "dblreq.dat").read_bytes()
    items = _whole(data)
    assert _reasons(items[2:]) == [("Missing Content-Length header on a stream transport", 400)]
    first, second = (parse(i) for i in items[:2] if isinstance(i, bytes))
    assert isinstance(first, Request) and first.method == "REGISTER"
    assert isinstance(second, Request) and second.method == "INVITE"
    assert second.body.endswith(b"a=rtpmap:31 LP")


def test_siprec_corpus_whole_and_byte_by_byte() -> None:
    stream = b"".join(SIPREC)
    assert _whole(stream) == SIPREC
    assert _bytewise(stream) == SIPREC


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_any_chunking_yields_the_same_messages(sizes: list[int]) -> None:
    stream = SIPREC[0] + KEEPALIVE_PING + OPTIONS + INFO + SIPREC[1]
    framer = StreamFramer(65535)
    out: list[Item] = []
    at = 0
    for size in sizes:
        out.extend(framer.feed(stream[at : at + size]))
        at += size
    out.extend(framer.feed(stream[at:]))
    assert out == [SIPREC[0], KEEPALIVE_PING, OPTIONS, INFO, SIPREC[1]]


@settings(max_examples=200)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_arbitrary_bytes_yield_only_bytes_or_fatal_errors(data: bytes, chunk: int) -> None:
    framer = StreamFramer(300)
    items: list[Item] = []
    for i in range(0, len(data), chunk):
        items.extend(framer.feed(data[i : i + chunk]))
    for item in items[:-1]:
        assert isinstance(item, bytes)
    if items and isinstance(items[-1], SipSyntaxError):
        assert items[-1].fatal_for_stream
        assert framer.failed
    assert framer.buffered <= 300 + chunk
