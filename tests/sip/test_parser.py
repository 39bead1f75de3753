"""callvault.sip.parser: golden corpus facts, exact errors on invalid twins, properties."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.sip.errors import SipSyntaxError
from callvault.sip.message import Request, Response
from callvault.sip.parser import content_length, head_content_length, parse
from callvault.sip.uri import AbsoluteUri, NameAddr, SipUri, Via
from tests.corpus import SIPREC_CORPUS, TORTURE_CORPUS
from tests.sip.torture_expectations import EXPECTED

BASE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.example.com>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n"
)


def _torture(name: str) -> bytes:
    return (TORTURE_CORPUS / name).read_bytes()


def _request(data: bytes | str) -> Request:
    message = parse(data.encode() if isinstance(data, str) else data)
    assert isinstance(message, Request)
    return message


def _corpus_files() -> list[Path]:
    return sorted(TORTURE_CORPUS.rglob("*.dat")) + sorted(SIPREC_CORPUS.glob("*.sip"))


def _parseable() -> list[Path]:
    out = []
    for path in _corpus_files():
        try:
            parse(path.read_bytes())
        except SipSyntaxError:
            continue
        out.append(path)
    return out


# -- golden facts from the torture corpus -------------------------------------------------


def test_wsinv_folding_and_lws_everywhere() -> None:
    request = _request(_torture("wsinv.dat"))
    vias = [Via.parse(v) for v in request.headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert request.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert request.to_tag == "1918181833n"
    assert request.from_tag == "98asjd8"
    assert request.cseq == (9, "INVITE")
    assert request.headers.get("Max-Forwards") == "0068"
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = NameAddr.parse(request.headers.get("Contact") or "", header="Contact")
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    from_ = NameAddr.parse(request.headers.get("From") or "", header="From")
    assert from_.display_name == 'J Rosenberg \\"'
    assert len(request.body) == 150
    assert "Content-Length" not in request.headers  # framing is consumed


def test_intmeth_unusual_characters_and_nul_in_quoted_pair() -> None:
    request = _request(_torture("intmeth.dat"))
    assert request.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = SipUri.parse(request.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    to = NameAddr.parse(request.headers.get("To") or "", header="To")
    assert to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.cseq == (139122385, request.method)
    assert request.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    from_ = NameAddr.parse(request.headers.get("From") or "", header="From")
    assert from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert from_.tag == "_token~1'+`*%!-."
    assert (
        from_.params["fromparam''~+*_!.-%"]
        == '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'
    )


def test_escapes_are_decoded_only_where_rfc_3261_allows() -> None:
    esc01 = _request(_torture("esc01.dat"))
    assert SipUri.parse(esc01.uri).user == "sips:user@example.com"
    assert NameAddr.parse(esc01.headers.get("To") or "").uri == SipUri.parse("sip:user@example.com")
    contact = NameAddr.parse(esc01.headers.get("Contact") or "")
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.user == "caller"
    assert contact.uri.params == {"lr": None, "name": "value%41"}  # no recursive unescaping
    escnull = _request(_torture("escnull.dat"))
    contacts = [NameAddr.parse(v).uri for v in escnull.headers.get_all("Contact")]
    assert [u.user for u in contacts if isinstance(u, SipUri)] == ["\x00", "\x00\x00"]
    esc02 = _request(_torture("esc02.dat"))
    assert esc02.method == "RE%47IST%45R"
    assert NameAddr.parse(esc02.headers.get("To") or "").display_name == "%Z%45"
    assert len(esc02.headers.get_all("Contact")) == 2
    assert esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    semiuri = _request(_torture("semiuri.dat"))
    assert SipUri.parse(semiuri.uri).user == "user;par=u@example.net"


def test_datagram_framing_cases_from_the_corpus() -> None:
    dblreq = _request(_torture("dblreq.dat"))
    assert dblreq.method == "REGISTER"
    assert dblreq.body == b""  # the INVITE octets after Content-Length 0 are ignored
    inv2543 = _request(_torture("inv2543.dat"))
    assert len(inv2543.body) == 105  # no Content-Length: the rest of the datagram
    assert inv2543.from_tag is None
    assert Via.parse(inv2543.headers.get("Via") or "").branch is None
    mpart = _request(_torture("mpart01.dat"))
    assert len(mpart.body) == 553
    assert b"\x00" in mpart.body
    # The index note says multipart/signed; the bytes say multipart/mixed.
    assert mpart.headers.get("Content-Type") == "multipart/mixed;boundary=7a9cbec02ceef655"


def test_longreq_has_34_via_values() -> None:
    # The index note says 30 Via header lines; the message has 34.
    request = _request(_torture("longreq.dat"))
    assert len(request.headers.get_all("Via")) == 34
    assert Via.parse(request.headers.get_all("Via")[-1]).received == "192.0.2.5"


def test_responses_with_unusual_reason_phrases() -> None:
    unreason = parse(_torture("unreason.dat"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse(_torture("noreason.dat"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")
    no_space = parse(_torture("noreason.dat").replace(b"SIP/2.0 100 \r\n", b"SIP/2.0 100\r\n"))
    assert isinstance(no_space, Response)
    assert no_space.reason == ""


def test_non_sip_uris_in_headers_are_kept() -> None:
    request = _request(_torture("unksm2.dat"))
    assert NameAddr.parse(request.headers.get("To") or "").uri == AbsoluteUri("isbn", "2983792873")
    request = _request(_torture("unkscm.dat"))
    assert request.uri == "nobodyKnowsThisScheme:totallyopaquecontent"


def test_contact_params_belong_to_header_or_uri_as_written() -> None:
    cparam01 = NameAddr.parse(_request(_torture("cparam01.dat")).headers.get("Contact") or "")
    assert isinstance(cparam01.uri, SipUri)
    assert (cparam01.uri.params, cparam01.params) == ({}, {"unknownparam": None})
    cparam02 = NameAddr.parse(_request(_torture("cparam02.dat")).headers.get("Contact") or "")
    assert isinstance(cparam02.uri, SipUri)
    assert (cparam02.uri.params, cparam02.params) == ({"unknownparam": None}, {})
    regescrt = NameAddr.parse(_request(_torture("regescrt.dat")).headers.get("Contact") or "")
    assert isinstance(regescrt.uri, SipUri)
    assert regescrt.uri.headers == (("Route", "<sip:sip.example.com>"),)


@pytest.mark.parametrize(
    ("name", "host", "port"),
    [
        ("port-ambiguous.dat", "[2001:db8::10:5070]", None),
        ("port-unambiguous.dat", "[2001:db8::10]", 5070),
        ("ipv6-good.dat", "[2001:db8::10]", None),
        ("ipv6-bug-abnf-3-colons.dat", "[2001:db8:::192.0.2.1]", None),
        ("ipv6-correct-abnf-2-colons.dat", "[2001:db8::192.0.2.1]", None),
    ],
)
def test_rfc5118_request_uris_in_both_forms(name: str, host: str, port: int | None) -> None:
    archive = _request(_torture(f"rfc5118/{name}"))
    wire = _request(_torture(f"rfc5118/wire/{name}"))
    assert archive == wire  # LF or CRLF, closed header section or not: same message
    uri = SipUri.parse(wire.uri)
    assert (uri.host, uri.port) == (host, port)


def test_rfc5118_via_received_with_and_without_brackets() -> None:
    for name in ("via-received-param-with-delim.dat", "via-received-param-no-delim.dat"):
        via = Via.parse(_request(_torture(f"rfc5118/{name}")).headers.get("Via") or "")
        assert via.host == "[2001:db8::9:1]"
        assert via.received == "2001:db8::9:255"
    vias = _request(_torture("rfc5118/mult-ip-in-header.dat")).headers.get_all("Via")
    parsed = [Via.parse(v) for v in vias]
    assert [(v.host, v.port, v.received) for v in parsed] == [
        ("[2001:db8::9:1]", 6050, None),
        ("192.0.2.1", None, None),
        ("[2001:db8::9:255]", None, "192.0.2.200"),
    ]


def test_rfc5118_archive_content_length_faults() -> None:
    for name in ("ipv6-in-sdp.dat", "mult-ip-in-sdp.dat"):
        with pytest.raises(SipSyntaxError, match=r"^Content-Length larger than message body$"):
            parse(_torture(f"rfc5118/{name}"))
        assert _request(_torture(f"rfc5118/wire/{name}")).body.startswith(b"v=0\r\n")


# -- SIPREC corpus ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SIPREC_CORPUS.glob("*.sip")), ids=lambda p: p.stem)
def test_siprec_message_matches_its_sidecar(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text())["expected"]
    request = _request(path.read_bytes())
    assert request.method == expected["method"]
    assert request.uri == expected["request_uri"]
    assert request.call_id == expected["call_id"]
    number, method = request.cseq
    assert f"{number} {method}" == expected["cseq"]
    assert len(request.body) == expected["content_length"]
    assert request.headers.get("Content-Type") == expected["content_type"]
    NameAddr.parse(request.headers.get("Contact") or "", header="Contact")


def test_siprec_corpus_is_complete() -> None:
    assert len(list(SIPREC_CORPUS.glob("*.sip"))) == 25


# -- round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("path", _parseable(), ids=lambda p: p.name)
def test_corpus_round_trip(path: Path) -> None:
    message = parse(path.read_bytes())
    again = parse(bytes(message))
    assert again == message
    assert bytes(again) == bytes(message)


def test_every_valid_corpus_message_round_trips() -> None:
    # Guards the parametrisation above against an empty or shrunken corpus.
    assert len(_parseable()) == 25 + sum(e.parses for e in EXPECTED.values())


# -- line ends, leading CRLFs, missing blank line -----------------------------------------


def test_lf_line_ends_leading_crlfs_and_missing_final_blank_line() -> None:
    crlf = _request(BASE)
    assert _request(BASE.replace("\r\n", "\n")) == crlf
    assert _request("\r\n\r\n" + BASE) == crlf
    bodyless = BASE.replace("Content-Length: 4", "Content-Length: 0").split("\r\n\r\n")[0]
    assert _request(bodyless).body == b""
    assert _request(bodyless + "\r\n").body == b""


def test_trailing_bytes_after_content_length_are_ignored() -> None:
    assert _request(BASE + "garbage").body == b"v=0\n"


def test_missing_content_length_means_rest_of_datagram() -> None:
    request = _request(BASE.replace("Content-Length: 4\r\n", "") + "more")
    assert request.body == b"v=0\nmore"


def test_body_bytes_are_kept_verbatim_and_bad_utf8_in_headers_is_replaced() -> None:
    data = BASE.encode().replace(b"v=0\n", b"\xff\x00\r\n")
    data = data.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSubject: caf\xe9")
    request = _request(data)
    assert request.body == b"\xff\x00\r\n"
    assert request.headers.get("Subject") == "caf\ufffd"


def test_compact_forms_and_lws_before_colon() -> None:
    compact = (
        BASE.replace("Via:", "v :")
        .replace("To:", "t:")
        .replace("From:", "f\t:")
        .replace("Call-ID:", "i:")
        .replace("Contact:", "m:")
        .replace("Content-Type:", "c:")
        .replace("Content-Length:", "l:")
    )
    assert _request(compact) == _request(BASE)


def test_max_headers_is_a_limit_on_header_fields() -> None:
    extra = "".join(f"X-H{i}: {i}\r\n" for i in range(10))
    data = BASE.replace("\r\n\r\n", "\r\n" + extra + "\r\n", 1)
    # 9 header fields in BASE (Content-Length included) + 10 more = 19.
    assert len(parse(data.encode(), max_headers=19).headers) == 18
    with pytest.raises(SipSyntaxError, match=r"^Too many headers$"):
        parse(data.encode(), max_headers=18)


# -- exact errors on invalid twins -----------------------------------------------------------

TWINS: list[tuple[str, str, str, int]] = [
    ("SIP/2.0\r\nVia", "SIP/2.0 \r\nVia", "Malformed Request-Line: trailing whitespace", 400),
    ("INVITE sip:bob", " INVITE sip:bob", "Malformed Request-Line: leading whitespace", 400),
    ("bob@example.com SIP/2.0", "bob@example.com", "Malformed Request-Line", 400),
    ("INVITE sip", "INV(ITE sip", "Malformed Request-Line: bad method", 400),
    ("com SIP/2.0", "com SIP/2.1", "Version Not Supported", 505),
    ("com SIP/2.0", "com HTTP/1.1", "Malformed Request-Line: bad SIP-Version", 400),
    (
        "sip:bob@example.com SIP",
        "sip:bob@exa mple.com SIP",
        "Bad Request-URI: embedded whitespace",
        400,
    ),
    (
        "sip:bob@example.com SIP",
        "sip:bob@[::1 SIP",
        "Bad Request-URI: bad IPv6 reference '[::1'",
        400,
    ),
    (
        "sip:bob@example.com SIP",
        "sip:bob@example.com:99999 SIP",
        "Bad Request-URI: bad port '99999'",
        400,
    ),
    (
        "sip:bob@example.com SIP",
        "sip:b%4ob@example.com SIP",
        "Bad Request-URI: bad escape in user part",
        400,
    ),
    ("sip:bob@example.com SIP", "sip:@example.com SIP", "Bad Request-URI: empty user part", 400),
    ("sip:bob@example.com SIP", "sip:bob@ SIP", "Bad Request-URI: missing host", 400),
    (
        "sip:bob@example.com SIP",
        "sip:bob@example.com;=x SIP",
        "Bad Request-URI: empty parameter",
        400,
    ),
    (
        "sip:bob@example.com SIP",
        "sip:bob@ex!ample.com SIP",
        "Bad Request-URI: bad host 'ex!ample.com'",
        400,
    ),
    (
        "sip:bob@example.com SIP",
        "tel:+1-ab-x SIP",
        "Bad Request-URI: bad telephone number '+1-ab-x'",
        400,
    ),
    ("sip:bob@example.com SIP", "1nvalid:x SIP", "Bad Request-URI: missing scheme", 400),
    ("Max-Forwards: 70", "Max-Forwards 70", "Malformed header line 'Max-Forwards 70'", 400),
    ("Max-Forwards: 70", "Max Forwards: 70", "Malformed header name 'Max Forwards'", 400),
    ("Max-Forwards: 70", "Max-Forwards: 7\r0", "Malformed header section: bare CR", 400),
    (
        "SIP/2.0\r\nVia",
        "SIP/2.0\r\n X: y\r\nVia",
        "Malformed header section: folded line after start line",
        400,
    ),
    ("Max-Forwards: 70", "Max-Forwards: 70\r\n 7\r1", "Malformed header section: bare CR", 400),
    (
        "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n",
        "",
        "Missing Via header",
        400,
    ),
    ("From: Alice <sip:alice@example.com>;tag=1928301774\r\n", "", "Missing From header", 400),
    ("To: Bob <sip:bob@example.com>\r\n", "", "Missing To header", 400),
    ("CSeq: 314159 INVITE\r\n", "", "Missing CSeq header", 400),
    ("Call-ID: a84b4c76e66710@pc33.example.com\r\n", "", "Missing Call-ID header", 400),
    ("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nTo: <sip:x@y>\r\n", "Multiple To headers", 400),
    (
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nMax-Forwards: 69\r\n",
        "Multiple Max-Forwards headers",
        400,
    ),
    (
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nc: text/plain\r\n",
        "Multiple Content-Type headers",
        400,
    ),
    (
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nExpires: 1\r\nExpires: 2\r\n",
        "Multiple Expires headers",
        400,
    ),
    ("a84b4c76e66710@pc33", "a84b4c76 e66710@pc33", "Malformed Call-ID header", 400),
    ("CSeq: 314159 INVITE", "CSeq: x INVITE", "Malformed CSeq header", 400),
    ("CSeq: 314159 INVITE", "CSeq: 314159", "Malformed CSeq header", 400),
    ("CSeq: 314159 INVITE", "CSeq: 2147483648 INVITE", "CSeq number out of range", 400),
    ("CSeq: 314159 INVITE", "CSeq: 314159 BYE", "CSeq method does not match request method", 400),
    ("Max-Forwards: 70", "Max-Forwards: seventy", "Malformed Max-Forwards header", 400),
    ("Max-Forwards: 70", "Max-Forwards: 256", "Max-Forwards out of range", 400),
    ("Max-Forwards: 70", "Expires: -1", "Malformed Expires header", 400),
    ("Max-Forwards: 70", "Expires: 4294967296", "Expires out of range", 400),
    ("Content-Type: application/sdp", "Content-Type: sdp", "Malformed Content-Type header", 400),
    (
        "Content-Type: application/sdp",
        "Content-Type: a/b;=c",
        "Malformed Content-Type header: empty parameter",
        400,
    ),
    ("Content-Length: 4", "Content-Length: 4 4", "Malformed Content-Length", 400),
    ("Content-Length: 4", "Content-Length: 99999999999", "Content-Length out of range", 400),
    ("Content-Length: 4", "Content-Length: 5", "Content-Length larger than message body", 400),
    ("Content-Length: 4", "Content-Length: 4\r\nl: 4", "Multiple Content-Length headers", 400),
    ("UDP pc33.example.com;", "UDP;", "Malformed Via header: bad sent-protocol", 400),
    ("SIP/2.0/UDP pc33", "SIP/2.0 UDP pc33", "Malformed Via header: bad sent-protocol", 400),
    (
        "pc33.example.com;branch",
        "pc33.example.com extra;branch",
        "Malformed Via header: whitespace in sent-by",
        400,
    ),
    ("branch=z9hG4bK776asdhds", "branch", "Malformed Via header: bad branch", 400),
    (
        "branch=z9hG4bK776asdhds",
        "branch=z;received=pc33",
        "Malformed Via header: bad received parameter",
        400,
    ),
    (
        "branch=z9hG4bK776asdhds",
        "branch=z;rport=x",
        "Malformed Via header: bad rport parameter",
        400,
    ),
    ("branch=z9hG4bK776asdhds", "branch=z;ttl=300", "Malformed Via header: bad ttl parameter", 400),
    (
        "UDP pc33.example.com;",
        "UDP 2001:db8::1;",
        "Malformed Via header: IPv6 address must be enclosed in []",
        400,
    ),
    (
        "z9hG4bK776asdhds\r\n",
        "z9hG4bK776asdhds,,SIP/2.0/UDP h\r\n",
        "Malformed Via header: empty value",
        400,
    ),
    ("To: Bob <sip", 'To: "Bob <sip', "Unterminated quoted string in To header", 400),
    (
        "To: Bob <sip:bob@example.com>",
        "To: Bob <sip:bob@example.com",
        "Malformed To header: missing '>'",
        400,
    ),
    ("To: Bob <sip", 'To: "Bob" sip', "Malformed To header: expected '<' after display name", 400),
    (
        "To: Bob <sip:bob@example.com>",
        "To: <sip:bob@example.com> x",
        "Malformed To header: expected ';' before parameters",
        400,
    ),
    ("tag=1928301774", "tag=", "Malformed From header: bad value for parameter 'tag'", 400),
    ("tag=1928301774", "tag=a b", "Malformed From header: bad value for parameter 'tag'", 400),
    (
        "To: Bob <sip:bob@example.com>",
        "To: <bob@example.com>",
        "Malformed To header: missing scheme",
        400,
    ),
    (
        "To: Bob <sip:bob@example.com>",
        "To: sip:bob@example.com, sip:x@y",
        "Malformed To header: URI with ',' or '?' must be enclosed in <>",
        400,
    ),
    (
        "To: Bob <sip:bob@example.com>",
        "To: Bob, Jr <sip:bob@example.com>",
        "Malformed To header: display name must be tokens or a quoted string",
        400,
    ),
    (
        "Contact: <sip:alice@pc33.example.com>",
        "Contact: *",
        "Malformed Contact header: '*' outside REGISTER",
        400,
    ),
    (
        "Contact: <sip:alice@pc33.example.com>",
        "Contact: <sip:a@b>,,<sip:c@d>",
        "Malformed Contact header: empty value",
        400,
    ),
    (
        "Contact: <sip:alice@pc33.example.com>",
        "Contact: <sip:a@b>;;",
        "Malformed Contact header: empty parameter",
        400,
    ),
]


@pytest.mark.parametrize(("old", "new", "reason", "status"), TWINS)
def test_invalid_twin_is_refused_with_exact_reason(
    old: str, new: str, reason: str, status: int
) -> None:
    assert old in BASE
    with pytest.raises(SipSyntaxError) as info:
        parse(BASE.replace(old, new, 1).encode())
    assert (info.value.reason, info.value.status) == (reason, status)


def test_partial_request_lets_a_refused_request_be_answered() -> None:
    with pytest.raises(SipSyntaxError) as info:
        parse(BASE.replace("CSeq: 314159 INVITE", "CSeq: x INVITE").encode())
    partial = info.value.partial
    assert partial is not None
    assert (partial.method, partial.uri, partial.body) == ("INVITE", "sip:bob@example.com", b"")
    assert partial.call_id == "a84b4c76e66710@pc33.example.com"
    assert "Content-Length" not in partial.headers
    with pytest.raises(SipSyntaxError) as info:
        parse(b"INVITE\r\nVia: SIP/2.0/UDP h\r\n\r\n")
    assert info.value.partial is None  # no Request-URI to answer


def test_bad_responses_are_dropped() -> None:
    response = BASE.replace("INVITE sip:bob@example.com SIP/2.0", "SIP/2.0 180 Ringing")
    assert isinstance(parse(response.encode()), Response)
    for old, new in [
        ("SIP/2.0 180", "SIP/2.0 700"),
        ("SIP/2.0 180", "SIP/2.0 18"),
        ("SIP/2.0 180", "SIP/3.0 180"),
        ("SIP/2.0 180", " SIP/2.0 180"),
        ("CSeq: 314159 INVITE", "CSeq: 9292394834772304023312 INVITE"),
        ("Content-Length: 4", "Content-Length: -1"),
        ("Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n", ""),
    ]:
        with pytest.raises(SipSyntaxError) as info:
            parse(response.replace(old, new).encode())
        assert info.value.status is None
        assert info.value.partial is None


def test_empty_datagrams_are_dropped() -> None:
    for data in (b"", b"\r\n", b"\r\n\r\n"):
        with pytest.raises(SipSyntaxError, match=r"^Empty message$") as info:
            parse(data)
        assert info.value.status is None


def test_content_length_helpers() -> None:
    assert content_length([]) is None
    assert content_length([" 007 "]) == 7
    assert head_content_length(b"INVITE x SIP/2.0\r\nl: 12\r\nX: y") == 12
    assert head_content_length(b"INVITE x SIP/2.0\r\nContent-Length:\r\n  12\r\nX: y") == 12
    assert head_content_length(b"INVITE x SIP/2.0\r\nX: y") is None
    with pytest.raises(SipSyntaxError, match=r"^Malformed Content-Length$") as info:
        head_content_length(b"INVITE x SIP/2.0\r\nContent-Length: five")
    assert info.value.fatal_for_stream


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_sip_syntax_error(data: bytes) -> None:
    with contextlib.suppress(SipSyntaxError):
        parse(data)


_SEEDS = [p.read_bytes() for p in _corpus_files()]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=6)), max_size=6),
)
def test_mutated_corpus_messages_raise_only_sip_syntax_error(
    seed: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(seed)
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    try:
        message = parse(bytes(data))
    except SipSyntaxError:
        return
    assert parse(bytes(message)) == message


@settings(max_examples=100)
@given(st.integers(0, len(BASE)))
def test_truncated_message_raises_only_sip_syntax_error(cut: int) -> None:
    with contextlib.suppress(SipSyntaxError):
        parse(BASE.encode()[:cut])
