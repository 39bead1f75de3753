"""callvault.sip.headers: the header multi-map and the shared lexical helpers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import (
    TOKEN_CHARS,
    Headers,
    canonical_name,
    format_params,
    is_token,
    parse_params,
    quote_string,
    read_quoted_string,
    split_comma_values,
    split_outside_quotes,
)


def test_canonical_names_and_compact_forms() -> None:
    assert canonical_name("v") == "Via"
    assert canonical_name(" CSEQ ") == "CSeq"
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("X-Custom") == "X-Custom"
    assert canonical_name("l") == "Content-Length"


def test_headers_multimap() -> None:
    headers = Headers([("v", "a"), ("To", "t"), ("via", "b, c")])
    assert list(headers) == [("Via", "a"), ("To", "t"), ("Via", "b, c")]
    assert "VIA" in headers and "v" in headers and 3 not in headers
    assert headers.get("v") == "a"
    assert headers.get("Nope", "d") == "d"
    assert headers.get_raw_all("Via") == ["a", "b, c"]
    assert headers.get_all("Via") == ["a", "b", "c"]
    assert headers.get_all("To") == ["t"]
    headers.set("Via", "z")
    assert list(headers) == [("Via", "z"), ("To", "t")]
    headers.add("f", "x")
    headers.set("Subject", "s")
    copy = headers.copy()
    headers.remove("to")
    assert list(copy) == [("Via", "z"), ("To", "t"), ("From", "x"), ("Subject", "s")]
    assert len(headers) == 3
    assert copy != headers
    assert repr(Headers([("To", "t")])) == "Headers([('To', 't')])"


def test_split_comma_values() -> None:
    value = '"Doe, John" <sip:a@b;x=1,2>, <sip:c@d>,,sip:e@f'
    assert split_comma_values(value) == ['"Doe, John" <sip:a@b;x=1,2>', "<sip:c@d>", "sip:e@f"]
    assert split_comma_values(value, keep_empty=True) == [
        '"Doe, John" <sip:a@b;x=1,2>',
        "<sip:c@d>",
        "",
        "sip:e@f",
    ]
    assert split_comma_values('"a\\",b", c') == ['"a\\",b"', "c"]
    assert split_comma_values(" a ,b,") == ["a", "b"]
    assert split_comma_values("a,", keep_empty=True) == ["a", ""]


def test_tokens() -> None:
    assert is_token("!interesting-Method0123456789_*+`.%indeed'~")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token("a,b")


def test_quoted_strings() -> None:
    assert read_quoted_string('x"a\\"b\\\\c" rest', 1) == ('a"b\\c', 10)
    assert read_quoted_string('"open', 0) is None
    assert read_quoted_string('"ends with \\', 0) is None
    assert quote_string('a"b\\c') == '"a\\"b\\\\c"'
    assert split_outside_quotes('a;"b;c";d', ";") == ["a", '"b;c"', "d"]
    assert split_outside_quotes('a;"b;c', ";") == ["a", '"b;c']


def test_params() -> None:
    assert parse_params("", "X") == {}
    assert parse_params(" ; Tag = 1 ;LR; q=0.5;tag=2", "X") == {"tag": "1", "lr": None, "q": "0.5"}
    assert parse_params(';p="a;b"', "X") == {"p": '"a;b"'}
    assert parse_params(";received=[2001:db8::1]", "X") == {"received": "[2001:db8::1]"}
    assert format_params({"tag": "1", "lr": None}) == ";tag=1;lr"
    for text, reason in [
        ("x", "X: expected ';' before parameters"),
        (";", "X: empty parameter"),
        (";a b=1", "X: bad parameter name 'a b'"),
        (";a=", "X: bad value for parameter 'a'"),
        (';a="b"c', "X: bad value for parameter 'a'"),
    ]:
        with pytest.raises(SipSyntaxError) as info:
            parse_params(text, "X")
        assert info.value.reason == reason


@given(st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=30))
def test_quote_string_round_trip(text: str) -> None:
    quoted = quote_string(text)
    assert read_quoted_string(quoted, 0) == (text, len(quoted))


_TOKEN = st.text(alphabet="".join(sorted(TOKEN_CHARS)), min_size=1, max_size=8)


@given(
    st.dictionaries(
        _TOKEN.map(str.lower),
        st.none() | _TOKEN | st.text(max_size=8).map(quote_string),
        max_size=5,
    )
)
def test_params_round_trip(params: dict[str, str | None]) -> None:
    assert parse_params(format_params(params), "X") == params


@given(st.text(max_size=40))
def test_parse_params_raises_only_sip_syntax_error(text: str) -> None:
    with contextlib.suppress(SipSyntaxError):
        parse_params(";" + text, "X")
