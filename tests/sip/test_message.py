"""callvault.sip.message: serialisation, responses, CSeq, and generated round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import TOKEN_CHARS, Headers
from callvault.sip.message import (
    STANDARD_METHODS,
    Request,
    Response,
    header_param,
    make_response,
    parse_cseq,
    parse_message,
)
from callvault.sip.uri import NameAddr, SipUri, Via

INVITE = Request(
    "INVITE",
    "sip:bob@example.com",
    Headers(
        [
            ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
            ("Via", "SIP/2.0/TCP b.example.com;branch=z9hG4bK2"),
            ("To", "<sip:bob@example.com>"),
            ("From", '"Alice" <sip:alice@example.com>;tag=af'),
            ("Call-ID", "c1@a"),
            ("CSeq", "7 INVITE"),
            ("Max-Forwards", "70"),
            ("Content-Type", "application/sdp"),
        ]
    ),
    b"v=0\r\n",
)


def test_request_bytes_put_content_length_last() -> None:
    data = bytes(INVITE)
    assert data.startswith(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP")
    assert data.endswith(b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
    assert parse_message(data) == INVITE


def test_request_properties_and_repr() -> None:
    assert INVITE.call_id == "c1@a"
    assert INVITE.cseq == (7, "INVITE")
    assert (INVITE.from_tag, INVITE.to_tag, INVITE.branch) == ("af", None, "z9hG4bK1")
    assert repr(INVITE) == "<Request INVITE sip:bob@example.com call-id='c1@a'>"


def test_make_response_copies_rfc_3261_headers_and_adds_to_tag() -> None:
    response = make_response(
        INVITE,
        200,
        "OK",
        to_tag="srs1",
        headers=[("Contact", "<sip:srs@10.0.0.1>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    assert [name for name, _ in response.headers] == [
        "Via",
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Type",
    ]
    assert response.to_tag == "srs1"
    assert response.branch == "z9hG4bK1"
    assert response.cseq == (7, "INVITE")
    assert repr(response) == "<Response 200 OK>"
    parsed = parse_message(bytes(response))
    assert isinstance(parsed, Response)
    assert parsed == response
    again = make_response(Request("BYE", "sip:x", response.headers.copy()), 200, "OK", to_tag="new")
    assert again.to_tag == "srs1"  # an existing To tag is kept


def test_header_param() -> None:
    assert header_param('"a;tag=no" <sip:x;tag=no>;tag=yes', "tag") == "yes"
    assert header_param("sip:x ; Branch = z9 ", "branch") == "z9"
    assert header_param("<sip:x>;lr", "lr") == ""
    assert header_param("<sip:x;tag=no>", "tag") is None


def test_parse_cseq() -> None:
    assert parse_cseq("0009 INVITE") == (9, "INVITE")
    assert parse_cseq(" 2147483647\tBYE ") == (2**31 - 1, "BYE")
    assert parse_cseq("0000000000000001 ACK") == (1, "ACK")
    for value, reason in [
        ("", "Malformed CSeq header"),
        ("1", "Malformed CSeq header"),
        ("1 INVITE x", "Malformed CSeq header"),
        ("-1 INVITE", "Malformed CSeq header"),
        ("\u0661 INVITE", "Malformed CSeq header"),  # Arabic-Indic digit: not ASCII
        ("1 INV,ITE", "Malformed CSeq header"),
        ("2147483648 INVITE", "CSeq number out of range"),
        ("9" * 5000 + " INVITE", "CSeq number out of range"),
    ]:
        with pytest.raises(SipSyntaxError) as info:
            parse_cseq(value)
        assert info.value.reason == reason


def test_standard_methods() -> None:
    assert {"INVITE", "REGISTER", "MESSAGE", "PRACK", "UPDATE"} <= STANDARD_METHODS
    assert "NEWMETHOD" not in STANDARD_METHODS


def test_parse_message_is_the_parser() -> None:
    with pytest.raises(SipSyntaxError, match=r"^Empty message$"):
        parse_message(b"")


# Text a SIP message can carry: UTF-8 encodable (no lone surrogates), no line breaks.
_TEXT = st.characters(exclude_characters="\r\n", exclude_categories=("Cs",))
_TOKEN = st.text(alphabet="".join(sorted(TOKEN_CHARS)), min_size=1, max_size=12)
_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
_WORD = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@st.composite
def _requests(draw: st.DrawFn) -> Request:
    method = draw(_TOKEN)
    host = draw(_HOST)
    uri = SipUri(
        host,
        user=draw(st.none() | st.text(alphabet=_TEXT, min_size=1, max_size=10)),
        port=draw(st.none() | st.integers(1, 65535)),
    )
    to = NameAddr(
        uri,
        draw(st.none() | st.text(alphabet=_TEXT, max_size=12)),
    )
    from_ = NameAddr(SipUri(draw(_HOST), user="u"), None, {"tag": draw(_TOKEN)})
    via = Via(
        "UDP",
        draw(_HOST),
        draw(st.none() | st.integers(1, 65535)),
        {"branch": "z9hG4bK" + draw(_TOKEN)},
    )
    headers = Headers(
        [
            ("Via", str(via)),
            ("To", str(to)),
            ("From", str(from_)),
            ("Call-ID", draw(_WORD)),
            ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
            ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ]
    )
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.text(alphabet=_TEXT, max_size=20))
        headers.add("X-" + draw(_TOKEN), value.strip(" \t"))
    body = draw(st.binary(max_size=60))
    if body:
        headers.add("Content-Type", "application/octet-stream")
    return Request(method, str(uri), headers, body)


@given(_requests())
def test_generated_requests_round_trip(request: Request) -> None:
    assert parse_message(bytes(request)) == request
