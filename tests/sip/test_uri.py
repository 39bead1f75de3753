"""callvault.sip.uri: SIP/tel/absolute URIs, name-addr and Via values."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import TOKEN_CHARS
from callvault.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    TelUri,
    Via,
    escape,
    parse_host,
    parse_hostport,
    parse_uri,
    unescape,
)

# -- SipUri --------------------------------------------------------------------------


def test_sip_uri_fields() -> None:
    uri = SipUri.parse(
        "SIPS:alice:secret@Example.com:5061;transport=TCP;lr;Maddr=x?Subject=hi&To=a%20b"
    )
    assert uri == SipUri(
        host="Example.com",
        scheme="sips",
        user="alice",
        password="secret",
        port=5061,
        params={"transport": "TCP", "lr": None, "maddr": "x"},
        headers=(("Subject", "hi"), ("To", "a b")),
    )
    assert (
        str(uri)
        == "sips:alice:secret@Example.com:5061;transport=TCP;lr;maddr=x?Subject=hi&To=a%20b"
    )


def test_sip_uri_without_user_and_with_plus_param() -> None:
    uri = SipUri.parse("sip:212.188.68.146:5060;transport=TCP;+sip.src")
    assert (uri.user, uri.host, uri.port) == (None, "212.188.68.146", 5060)
    assert uri.params == {"transport": "TCP", "+sip.src": None}
    assert repr(uri) == "SipUri('sip:212.188.68.146:5060;transport=TCP;+sip.src')"


def test_user_part_may_hold_semicolons_question_marks_and_escapes() -> None:
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.params == {}
    assert str(uri) == "sip:user;par=u%40example.net@example.com"
    assert SipUri.parse("sip:null-%00-null@example.com").user == "null-\x00-null"
    assert SipUri.parse("sip:%C3%A9t%C3%A9@x").user == "été"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:user@[2001:db8::10:5070]", "[2001:db8::10:5070]", None),
        ("sip:user@[2001:db8:::192.0.2.1]", "[2001:db8:::192.0.2.1]", None),
        ("sip:user@[::ffff:192.0.2.2]", "[::ffff:192.0.2.2]", None),
        ("sip:host_name.example.com", "host_name.example.com", None),
        ("sip:example.com.:5060", "example.com.", 5060),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    uri = SipUri.parse(text)
    assert (uri.host, uri.port) == (host, port)
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sip:2001:db8::10", "Malformed SIP URI: IPv6 address must be enclosed in []"),
        ("sip:[2001:db8::zz]", "Malformed SIP URI: bad IPv6 reference '[2001:db8::zz]'"),
        ("sip:[2001:db8::1]x", "Malformed SIP URI: bad text after IPv6 reference"),
        ("sip:[2001:db8::1", "Malformed SIP URI: bad IPv6 reference '[2001:db8::1'"),
        ("sip:host:0x50", "Malformed SIP URI: bad port '0x50'"),
        ("sip:host:65536", "Malformed SIP URI: bad port '65536'"),
        ("sip:a@b@c", "Malformed SIP URI: bad host 'b@c'"),
        ("sip:.example.com", "Malformed SIP URI: bad host '.example.com'"),
        ("sip:a..b", "Malformed SIP URI: bad host 'a..b'"),
        ("sip:us er@host", "Malformed SIP URI: embedded whitespace"),
        ("sip:us<er@host", "Malformed SIP URI: bad character '<' in user part"),
        ("sip:user:p@ss@host", "Malformed SIP URI: bad host 'ss@host'"),
        ("sip:user:pa;ss@host", "Malformed SIP URI: bad character ';' in password"),
        ("sip:host;lr=", "Malformed SIP URI: empty value for parameter 'lr'"),
        ("sip:host;a=b%", "Malformed SIP URI: bad escape in parameter"),
        ("sip:host?x", "Malformed SIP URI: bad header 'x'"),
        ("sip:host?x=<", "Malformed SIP URI: bad character '<' in headers"),
        ("http://host", "Malformed SIP URI: not a SIP URI"),
        ("sip:", "Malformed SIP URI: missing host"),
    ],
)
def test_bad_sip_uris(text: str, reason: str) -> None:
    with pytest.raises(SipSyntaxError) as info:
        SipUri.parse(text)
    assert (info.value.reason, info.value.status) == (reason, 400)


def test_what_names_the_place_of_the_fault() -> None:
    with pytest.raises(SipSyntaxError, match=r"^Bad Request-URI: missing host$"):
        SipUri.parse("sip:", what="Bad Request-URI")


def test_params_are_unescaped_once_and_reescaped() -> None:
    uri = SipUri.parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "caller"
    assert uri.params == {"lr": None, "name": "value%41"}
    assert str(uri) == "sip:caller@host5.example.net;lr;name=value%2541"


def test_escape_helpers() -> None:
    assert unescape("a%41%zz%4") == "aA%zz%4"
    assert unescape("%FF") == "\udcff"
    assert escape("\udcff a", frozenset("a")) == "%FF%20a"
    assert escape("abc", frozenset("abc")) == "abc"


_USER_TEXT = st.text(min_size=1, max_size=20)
_PARAM_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-+.", min_size=1, max_size=8)


@given(
    user=st.none() | _USER_TEXT,
    password=st.none() | st.text(max_size=10),
    host=st.sampled_from(["example.com", "10.0.0.1", "[2001:db8::1]", "a-b.c_d"]),
    port=st.none() | st.integers(0, 65535),
    params=st.dictionaries(_PARAM_NAME, st.none() | st.text(min_size=1, max_size=10), max_size=4),
    headers=st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=3),
)
def test_sip_uri_round_trip(
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: dict[str, str | None],
    headers: list[tuple[str, str]],
) -> None:
    uri = SipUri(
        host, "sip", user, password if user is not None else None, port, params, tuple(headers)
    )
    assert SipUri.parse(str(uri)) == uri


@given(st.text(max_size=40))
def test_sip_uri_parse_raises_only_sip_syntax_error(text: str) -> None:
    try:
        uri = SipUri.parse("sip:" + text)
    except SipSyntaxError:
        return
    assert SipUri.parse(str(uri)) == uri


# -- tel and other schemes ---------------------------------------------------------------


def test_tel_uri() -> None:
    uri = TelUri.parse("tel:+1-201-555-0123;Phone-Context=example.com;isub=x")
    assert uri == TelUri("+1-201-555-0123", {"phone-context": "example.com", "isub": "x"})
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com;isub=x"
    assert TelUri.parse("tel:*69#").number == "*69#"
    for bad in ("tel:", "tel:+", "tel:12 34", "tel:1;=x", "sip:1"):
        with pytest.raises(SipSyntaxError):
            TelUri.parse(bad)


def test_absolute_uri_keeps_unknown_schemes_opaque() -> None:
    assert parse_uri("soap.beep://192.0.2.103:3002") == AbsoluteUri(
        "soap.beep", "//192.0.2.103:3002"
    )
    assert str(parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")) == (
        "nobodyKnowsThisScheme:totallyopaquecontent"
    )
    assert isinstance(parse_uri("TEL:123"), TelUri)
    assert isinstance(parse_uri("Sip:host"), SipUri)
    for bad, reason in [
        ("noscheme", "Malformed URI: missing scheme"),
        ("1x:y", "Malformed URI: missing scheme"),
        ("x_y:z", "Malformed URI: bad scheme 'x_y'"),
        ("isbn:", "Malformed URI: empty URI after scheme"),
        ("isbn:1 2", "Malformed URI: embedded whitespace"),
        ("isbn:1<2", "Malformed URI: bad character '<' in URI"),
    ]:
        with pytest.raises(SipSyntaxError) as info:
            parse_uri(bad)
        assert info.value.reason == reason


def test_host_helpers() -> None:
    assert parse_hostport("h:5060", "x") == ("h", 5060)
    assert parse_hostport("[::1]", "x") == ("[::1]", None)
    assert parse_host("[::1]", "x") == "[::1]"
    with pytest.raises(SipSyntaxError, match=r"^x: missing host$"):
        parse_hostport(":5060", "x")


# -- NameAddr ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "display", "uri", "params"),
    [
        ('"Alice A." <sip:alice@a.com>;tag=12', "Alice A.", "sip:alice@a.com", {"tag": "12"}),
        (
            "caller<sip:caller@example.com>;tag=323",
            "caller",
            "sip:caller@example.com",
            {"tag": "323"},
        ),
        ("Two  Words <sip:x@y>", "Two Words", "sip:x@y", {}),
        ("<sip:x@y;lr>", None, "sip:x@y;lr", {}),
        ("sip:x@y;lr", None, "sip:x@y", {"lr": None}),
        ("sip:x@y ;  tag  =  abc", None, "sip:x@y", {"tag": "abc"}),
        ('"\\"quoted\\" \\\\" <tel:+1>', '"quoted" \\', "tel:+1", {}),
        ('"" <sip:x@y>;p="a;b,c"', "", "sip:x@y", {"p": '"a;b,c"'}),
        ("<urn:service:sos>;Q=0.5", None, "urn:service:sos", {"q": "0.5"}),
    ],
)
def test_name_addr(
    value: str, display: str | None, uri: str, params: dict[str, str | None]
) -> None:
    parsed = NameAddr.parse(value)
    assert (parsed.display_name, str(parsed.uri), parsed.params) == (display, uri, params)
    assert NameAddr.parse(str(parsed)) == parsed


def test_name_addr_tag_and_str() -> None:
    parsed = NameAddr.parse("Bob <sip:bob@b.com>;tag=x9")
    assert parsed.tag == "x9"
    assert str(parsed) == '"Bob" <sip:bob@b.com>;tag=x9'
    assert NameAddr.parse("sip:a@b").tag is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "Malformed Contact header: empty value"),
        ('"unterminated <sip:x@y>', "Unterminated quoted string in Contact header"),
        ('"trailing backslash\\', "Unterminated quoted string in Contact header"),
        ('"name" ', "Malformed Contact header: expected '<' after display name"),
        (
            "a,b <sip:x@y>",
            "Malformed Contact header: display name must be tokens or a quoted string",
        ),
        ("<sip:x@y", "Malformed Contact header: missing '>'"),
        ("< sip:x@y>", "Malformed Contact header: whitespace inside <>"),
        ("<sip:x@y >", "Malformed Contact header: whitespace inside <>"),
        ("<sip:x@y> z", "Malformed Contact header: expected ';' before parameters"),
        ("<sip:x@y>;a b", "Malformed Contact header: bad parameter name 'a b'"),
        ("<sip:x@y>;a=b c", "Malformed Contact header: bad value for parameter 'a'"),
        ('<sip:x@y>;a="b', "Malformed Contact header: bad value for parameter 'a'"),
        ("sip:x@y?h=v", "Malformed Contact header: URI with ',' or '?' must be enclosed in <>"),
        ("sip:x @y", "Malformed Contact header: embedded whitespace in URI"),
        ("<sip:x@[::1>", "Malformed Contact header: bad IPv6 reference '[::1'"),
    ],
)
def test_bad_name_addr(value: str, reason: str) -> None:
    with pytest.raises(SipSyntaxError) as info:
        NameAddr.parse(value, header="Contact")
    assert info.value.reason == reason


_TOKEN = st.text(alphabet="".join(sorted(TOKEN_CHARS)), min_size=1, max_size=10)


@given(
    display=st.none() | st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=20),
    params=st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8),
        st.none() | _TOKEN,
        max_size=3,
    ),
)
def test_name_addr_round_trip(display: str | None, params: dict[str, str | None]) -> None:
    value = NameAddr(SipUri("example.com", user="u"), display, params)
    assert NameAddr.parse(str(value)) == value


@given(st.text(max_size=60))
def test_name_addr_parse_raises_only_sip_syntax_error(text: str) -> None:
    with contextlib.suppress(SipSyntaxError):
        NameAddr.parse(text)


# -- Via ---------------------------------------------------------------------------------


def test_via_fields() -> None:
    via = Via.parse(
        "SIP / 2.0 / udp  host.example.com : 5060 ; branch = z9hG4bK1 ;rport;received=192.0.2.1;"
        "maddr=224.0.0.1;ttl=16"
    )
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "host.example.com",
        5060,
    )
    assert (via.branch, via.received, via.rport, via.maddr, via.ttl) == (
        "z9hG4bK1",
        "192.0.2.1",
        None,
        "224.0.0.1",
        16,
    )
    assert "rport" in via.params
    assert str(via) == (
        "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1;rport;received=192.0.2.1;"
        "maddr=224.0.0.1;ttl=16"
    )
    assert Via.parse(str(via)) == via


def test_via_ipv6_and_rport_value() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:6050;received=[2001:db8::9:255];rport=7000")
    assert (via.host, via.port, via.received, via.rport) == (
        "[2001:db8::9:1]",
        6050,
        "2001:db8::9:255",
        7000,
    )
    assert (
        Via.parse("SIP/2.0/UDP h;received=2001:db8:::192.0.2.1").received == "2001:db8:::192.0.2.1"
    )
    assert Via.parse("SIP/2.0/UDP h").ttl is None


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("SIP/2.0/UDP", "bad sent-protocol"),
        ("SIP/2.0", "bad sent-protocol"),
        ("SIP/2.0/U(DP h", "bad transport"),
        ("S IP/2.0/UDP h", "bad sent-protocol"),
        ("SIP/2.0/UDP h:x", "bad port 'x'"),
        ("SIP/2.0/UDP h;;", "empty parameter"),
        ("SIP/2.0/UDP h;branch=", "bad value for parameter 'branch'"),
        ("SIP/2.0/UDP h;received", "bad received parameter"),
        ("SIP/2.0/UDP h;ttl", "bad ttl parameter"),
        ("SIP/2.0/UDP h;rport=65536", "bad rport parameter"),
        ("SIP/2.0/UDP h;rport=" + "9" * 5000, "bad rport parameter"),
    ],
)
def test_bad_via(value: str, detail: str) -> None:
    with pytest.raises(SipSyntaxError) as info:
        Via.parse(value)
    assert info.value.reason == f"Malformed Via header: {detail}"


@given(st.text(max_size=60))
def test_via_parse_raises_only_sip_syntax_error(text: str) -> None:
    try:
        via = Via.parse("SIP/2.0/UDP " + text)
    except SipSyntaxError:
        return
    assert Via.parse(str(via)) == via
