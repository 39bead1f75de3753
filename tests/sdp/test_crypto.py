"""Tests for callvault.sdp.crypto: the RFC 4568 a=crypto attribute."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sdp import CryptoAttribute, KeyParam, SdpError
from callvault.sdp.crypto import KEY_SALT_LENGTHS

# RFC 4568 section 9.1 example (also in the AudioCodes SRTP corpus file).
RFC_EXAMPLE = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"


def test_rfc4568_example() -> None:
    crypto = CryptoAttribute.parse(RFC_EXAMPLE)
    assert crypto.tag == 1
    assert crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert crypto.key_salt == base64.b64decode("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    assert len(crypto.key_salt) == 30
    assert crypto.lifetime == 2**20
    assert crypto.mki == (1, 32)
    assert crypto.session_params == ()
    assert str(crypto) == RFC_EXAMPLE
    assert repr(crypto) == "<CryptoAttribute 1 AES_CM_128_HMAC_SHA1_80 keys=1>"


def test_several_keys_and_session_parameters() -> None:
    text = (
        "2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
        "inline:QUJDREUwMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP KDR=1"
    )
    crypto = CryptoAttribute.parse(text)
    assert [k.mki for k in crypto.keys] == [(1, 4), (2, 4)]
    assert crypto.session_params == ("FEC_ORDER=FEC_SRTP", "KDR=1")
    assert str(crypto) == text


def test_decimal_lifetime_and_missing_padding() -> None:
    padded = base64.b64encode(bytes(range(28))).decode()
    key = padded.rstrip("=")
    assert key != padded
    crypto = CryptoAttribute.parse(f"3 AEAD_AES_128_GCM inline:{key}|1000")
    assert crypto.key_salt == bytes(range(28))
    assert crypto.lifetime == 1000
    assert crypto.mki is None
    assert str(crypto) == f"3 AEAD_AES_128_GCM inline:{padded}|1000"


def test_unknown_suite_is_kept_without_a_length_check() -> None:
    crypto = CryptoAttribute.parse("1 FUTURE_SUITE inline:AAAA")
    assert (crypto.suite, crypto.key_salt) == ("FUTURE_SUITE", b"\x00\x00\x00")


def test_generate() -> None:
    crypto = CryptoAttribute.generate(5, "AES_CM_128_HMAC_SHA1_32", lambda n: b"\x07" * n)
    assert crypto == CryptoAttribute(5, "AES_CM_128_HMAC_SHA1_32", (KeyParam(b"\x07" * 30),))
    assert str(crypto) == "5 AES_CM_128_HMAC_SHA1_32 inline:" + base64.b64encode(
        b"\x07" * 30
    ).decode("ascii")
    assert len(CryptoAttribute.generate(1, "AEAD_AES_256_GCM").key_salt) == 44
    with pytest.raises(ValueError, match="unknown SRTP crypto suite 'NOPE'"):
        CryptoAttribute.generate(1, "NOPE")
    with pytest.raises(ValueError, match="rand returned 3 bytes, 30 needed"):
        CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80", lambda n: b"abc")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "Bad a=crypto: '1 AES_CM_128_HMAC_SHA1_80'"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "Bad a=crypto tag: 'x'"),
        ("1234567890 S inline:AAAA", "Bad a=crypto tag: '1234567890'"),
        ("1 AES-CM inline:AAAA", "Bad a=crypto suite: 'AES-CM'"),
        ("1 S uri:http://x", "Bad a=crypto key method: 'uri:http://x'"),
        ("1 S inline:@@@@", "Bad a=crypto key: '@@@@' is not base64"),
        ("1 S inline:", "Bad a=crypto key: '' is not base64"),
        ("1 S inline:A", "Bad a=crypto key: 'A' is not base64"),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
            "Bad a=crypto key: AES_CM_128_HMAC_SHA1_80 needs 30 bytes of key and salt, got 3",
        ),
        ("1 S inline:AAAA|2^x", "Bad a=crypto lifetime: '2^x'"),
        ("1 S inline:AAAA|2^65", "Bad a=crypto lifetime: '2^65'"),
        ("1 S inline:AAAA|forever", "Bad a=crypto lifetime: 'forever'"),
        ("1 S inline:AAAA|1:x", "Bad a=crypto MKI: '1:x'"),
        ("1 S inline:AAAA|1:129", "Bad a=crypto MKI length: '1:129'"),
        ("1 S inline:AAAA|1:4|2^20", "Bad a=crypto key parameter: 'inline:AAAA|1:4|2^20'"),
        ("1 S inline:AAAA|1|2|3", "Bad a=crypto key parameter: 'inline:AAAA|1|2|3'"),
        ("1 S inline:AAAA|1:1|2:2", "Bad a=crypto key parameter: 'inline:AAAA|1:1|2:2'"),
        ("1 S " + ";".join(["inline:AAAA"] * 17), "Too many a=crypto key parameters (17)"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(SdpError) as info:
        CryptoAttribute.parse(text)
    assert str(info.value) == message


_SUITES = st.sampled_from(sorted(KEY_SALT_LENGTHS))


@st.composite
def crypto_attributes(draw: st.DrawFn) -> CryptoAttribute:
    suite = draw(_SUITES)
    keys = draw(
        st.lists(
            st.builds(
                KeyParam,
                st.binary(min_size=KEY_SALT_LENGTHS[suite], max_size=KEY_SALT_LENGTHS[suite]),
                st.none() | st.integers(0, 2**64),
                st.none() | st.tuples(st.integers(0, 2**32), st.integers(1, 128)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    params = draw(st.lists(st.sampled_from(["KDR=1", "UNENCRYPTED_SRTCP", "WSH=64"]), max_size=2))
    return CryptoAttribute(draw(st.integers(0, 999_999_999)), suite, tuple(keys), tuple(params))


@given(crypto_attributes())
def test_round_trip(crypto: CryptoAttribute) -> None:
    assert CryptoAttribute.parse(str(crypto)) == crypto


@given(st.text(max_size=120))
def test_never_crashes(text: str) -> None:
    with contextlib.suppress(SdpError):
        CryptoAttribute.parse(text)
