"""Tests for callvault.sip.multipart: framing SIPREC bodies as real SRCs send them."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sip.multipart import (
    MAX_PARTS,
    BodyPart,
    MultipartError,
    content_type_params,
    parse_body,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
XML = b'<?xml version="1.0"?>\r\n<recording xmlns="urn:ietf:params:xml:ns:recording:1"/>'


def two_parts(eol: bytes = b"\r\n", preamble: bytes = b"", close: bool = True) -> bytes:
    lines = [
        b"--b1",
        b"Content-Type: application/sdp",
        b"",
        SDP.replace(b"\r\n", eol).rstrip(eol),
        b"--b1",
        b"Content-Type:application/rs-metadata+xml",
        b"Content-Disposition:recording-session",
        b"",
        XML.replace(b"\r\n", eol),
    ]
    body = preamble + eol.join(lines)
    return body + eol + b"--b1--" + eol if close else body


def summary(parts: list[BodyPart]) -> list[tuple[str, str | None, bytes]]:
    return [(p.content_type, p.content_disposition, p.body) for p in parts]


EXPECTED = [
    ("application/sdp", None, SDP.rstrip(b"\r\n")),
    ("application/rs-metadata+xml", "recording-session", XML),
]


def test_two_parts() -> None:
    assert summary(parse_body("multipart/mixed;boundary=b1", two_parts())) == EXPECTED


def test_part_keeps_its_final_line_break_before_the_delimiter_line() -> None:
    body = b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + SDP + b"\r\n--b1--\r\n"
    (part,) = parse_body("multipart/mixed; boundary=b1", body)
    assert part.body == SDP


@pytest.mark.parametrize("preamble", [b"\r\n", b"This is a preamble\r\n\r\n"])
def test_preamble_is_ignored(preamble: bytes) -> None:
    body = two_parts(preamble=preamble)
    assert summary(parse_body("multipart/mixed;boundary=b1", body)) == EXPECTED


def test_lf_line_ends() -> None:
    parts = parse_body("multipart/mixed;boundary=b1", two_parts(eol=b"\n"))
    assert [p.content_type for p in parts] == ["application/sdp", "application/rs-metadata+xml"]
    assert parts[0].body == SDP.replace(b"\r\n", b"\n").rstrip(b"\n")
    assert parts[1].content_disposition == "recording-session"


def test_missing_closing_delimiter_runs_the_last_part_to_the_end() -> None:
    parts = parse_body("multipart/mixed;boundary=b1", two_parts(close=False))
    assert summary(parts) == EXPECTED


def test_epilogue_and_transport_padding() -> None:
    body = two_parts().replace(b"--b1--\r\n", b"--b1-- \t\r\nepilogue --b1\r\n")
    body = body.replace(b"--b1\r\nContent-Type:app", b"--b1  \r\nContent-Type:app")
    assert summary(parse_body("multipart/mixed;boundary=b1", body)) == EXPECTED


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/mixed; boundary="b1"',
        "Multipart/Mixed;Boundary=b1",
        "multipart/mixed;charset=utf-8;boundary=b1",
    ],
)
def test_boundary_parameter_spellings(content_type: str) -> None:
    assert summary(parse_body(content_type, two_parts())) == EXPECTED


def test_boundary_that_prefixes_a_longer_line_is_not_a_delimiter() -> None:
    body = b"--b1\r\nContent-Type: text/plain\r\n\r\n--b1x\r\n--b1--"
    (part,) = parse_body("multipart/mixed;boundary=b1", body)
    assert part.body == b"--b1x"


def test_folded_part_header() -> None:
    body = (
        b"--b\r\nContent-Type: application/sdp\r\nContent-Disposition: session;\r\n"
        b" handling=required\r\n\r\nv=0\r\n--b--"
    )
    (part,) = parse_body("multipart/mixed;boundary=b", body)
    assert part.content_disposition == "session; handling=required"
    assert part.disposition_type == "session"


def test_part_without_headers_is_text_plain() -> None:
    (part,) = parse_body("multipart/mixed;boundary=b", b"--b\r\n\r\nhello\r\n--b--")
    assert (part.content_type, part.body, part.mime_type) == ("text/plain", b"hello", "text/plain")


def test_nested_multipart_is_flattened_one_level() -> None:
    inner = b"--in\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--in--"
    body = (
        b"--out\r\nContent-Type: multipart/alternative;boundary=in\r\n\r\n"
        + inner
        + b"\r\n--out\r\nContent-Type: application/rs-metadata+xml\r\n\r\n<x/>\r\n--out--"
    )
    parts = parse_body("multipart/mixed;boundary=out", body)
    assert [(p.content_type, p.body) for p in parts] == [
        ("application/sdp", b"v=0"),
        ("application/rs-metadata+xml", b"<x/>"),
    ]


def test_non_multipart_body_is_one_part() -> None:
    (part,) = parse_body("application/sdp", SDP)
    assert (part.content_type, part.body, part.content_disposition) == (
        "application/sdp",
        SDP,
        None,
    )
    (update,) = parse_body("application/rs-metadata", XML, disposition="recording-session")
    assert update.content_disposition == "recording-session"


def test_empty_body_has_no_parts() -> None:
    assert parse_body("multipart/mixed;boundary=b", b"") == []
    assert parse_body("", b"") == []


def test_content_type_params() -> None:
    assert content_type_params('multipart/mixed; boundary="a;b"; x=1') == {
        "boundary": "a;b",
        "x": "1",
    }


# -- invalid twins: exact messages ------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("multipart/mixed", b"--b\r\n\r\nx", "multipart body without a boundary parameter"),
        ('multipart/mixed;boundary=""', b"x", "multipart body without a boundary parameter"),
        (
            "multipart/mixed;boundary=nope",
            two_parts(),
            "multipart body has no delimiter line for boundary 'nope'",
        ),
        (
            "multipart/mixed;boundary=b",
            b"--b\r\nv=0\r\n\r\n--b--",
            "body part 1: bad header line 'v=0'",
        ),
        (
            "multipart/mixed;boundary=b",
            b"--b\r\n\r\nok\r\n--b\r\nBad Header: x\r\n\r\n--b--",
            "body part 2: bad header line 'Bad Header: x'",
        ),
        (
            "multipart/mixed;boundary=" + "x" * 201,
            b"x",
            "multipart boundary longer than 200 characters",
        ),
        ("multipart/mixed;boundary=bö", b"x", "multipart boundary is not ASCII"),
    ],
)
def test_invalid(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(MultipartError) as info:
        parse_body(content_type, body)
    assert str(info.value) == message
    assert info.value.status == 400


def test_too_many_parts() -> None:
    body = b"".join(b"--b\r\n\r\npart\r\n" for _ in range(MAX_PARTS + 1)) + b"--b--"
    with pytest.raises(MultipartError, match=r"^multipart body has more than 16 parts$"):
        parse_body("multipart/mixed;boundary=b", body)
    assert len(parse_body("multipart/mixed;boundary=b", body, max_parts=MAX_PARTS + 1)) == 17


def test_nesting_deeper_than_one_level() -> None:
    innermost = b"--c\r\n\r\nx\r\n--c--"
    inner = b"--in\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n" + innermost + b"\r\n--in--"
    body = b"--out\r\nContent-Type: multipart/mixed;boundary=in\r\n\r\n" + inner + b"\r\n--out--"
    with pytest.raises(MultipartError, match=r"^multipart body nested more than one level deep$"):
        parse_body("multipart/mixed;boundary=out", body)


def test_too_many_headers_in_a_part() -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(33))
    with pytest.raises(MultipartError, match=r"^body part 1: more than 32 headers$"):
        parse_body("multipart/mixed;boundary=b", b"--b\r\n" + headers + b"\r\nx\r\n--b--")


# -- properties ---------------------------------------------------------------------------
_BODY_TEXT = st.binary(max_size=60).map(lambda b: b.replace(b"-", b"_").replace(b"\r", b""))


@given(
    bodies=st.lists(_BODY_TEXT, min_size=1, max_size=6),
    eol=st.sampled_from([b"\r\n", b"\n"]),
    preamble=st.sampled_from([b"", b"\r\n", b"junk\r\n"]),
    close=st.booleans(),
)
def test_round_trip(bodies: list[bytes], eol: bytes, preamble: bytes, close: bool) -> None:
    chunks = [preamble]
    for index, body in enumerate(bodies):
        chunks.append(b"--B0und" + eol + b"Content-Type: application/x-%d" % index + eol + eol)
        chunks.append(body + eol)
    if close:
        chunks.append(b"--B0und--" + eol)
    raw = b"".join(chunks)
    parts = parse_body("multipart/mixed; boundary=B0und", raw)
    got = [p.body for p in parts]
    if not close:
        # Without a closing delimiter the last part keeps its final line break.
        got[-1] = got[-1][: -len(eol)]
    assert got == bodies
    assert [p.content_type for p in parts] == [f"application/x-{i}" for i in range(len(bodies))]


@given(
    content_type=st.sampled_from(["multipart/mixed;boundary=b", "application/sdp"]),
    body=st.binary(max_size=300),
)
def test_never_crashes(content_type: str, body: bytes) -> None:
    try:
        parts = parse_body(content_type, body)
    except MultipartError:
        return
    assert len(parts) <= MAX_PARTS


@given(st.binary(max_size=200))
def test_never_crashes_with_delimiters(noise: bytes) -> None:
    body = b"--b\r\n" + noise + b"\r\n--b\r\n" + noise + b"\r\n--b--"
    with contextlib.suppress(MultipartError):
        parse_body("multipart/mixed;boundary=b", body)
