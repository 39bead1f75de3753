"""SDES keying for SRTP: the ``a=crypto`` attribute (RFC 4568 section 9.1).

``CryptoAttribute.parse`` reads the attribute value (the part after ``a=crypto:``):
``tag SP crypto-suite SP key-params *(SP session-param)``. Only ``inline:`` key
parameters exist; each carries base64 of key||salt, an optional lifetime and an optional
MKI. The decoded key||salt is length-checked for the suites we know (RFC 4568, RFC 6188,
RFC 7714); an unknown suite is kept as is so that the answerer can refuse it. Errors
raise ``SdpError`` (a crypto attribute is part of an SDP body).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from callvault.sdp.errors import SdpError

__all__ = ["KEY_SALT_LENGTHS", "CryptoAttribute", "KeyParam"]

# Master key + master salt lengths in bytes, per suite.
KEY_SALT_LENGTHS: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "F8_128_HMAC_SHA1_80": 30,
    "AES_192_CM_HMAC_SHA1_80": 38,
    "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46,
    "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}

_TAG = re.compile(r"[0-9]{1,9}")
_SUITE = re.compile(r"[A-Za-z0-9_]{1,64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_MAX_KEY_PARAMS = 16


@dataclass(frozen=True, slots=True)
class KeyParam:
    """One ``inline:`` key parameter: key||salt, lifetime (packets), MKI (value, length)."""

    key_salt: bytes
    lifetime: int | None = None
    mki: tuple[int, int] | None = None

    def __str__(self) -> str:
        text = "inline:" + base64.b64encode(self.key_salt).decode("ascii")
        if self.lifetime is not None:
            text += "|" + _lifetime_text(self.lifetime)
        if self.mki is not None:
            text += f"|{self.mki[0]}:{self.mki[1]}"
        return text


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """An ``a=crypto`` value; ``str()`` gives it back (without ``a=crypto:``)."""

    tag: int
    suite: str
    keys: tuple[KeyParam, ...]
    session_params: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<CryptoAttribute {self.tag} {self.suite} keys={len(self.keys)}>"

    def __str__(self) -> str:
        parts = [str(self.tag), self.suite, ";".join(str(k) for k in self.keys)]
        parts.extend(self.session_params)
        return " ".join(parts)

    @property
    def key_salt(self) -> bytes:
        """The first (usually only) master key||salt."""
        return self.keys[0].key_salt

    @property
    def lifetime(self) -> int | None:
        return self.keys[0].lifetime

    @property
    def mki(self) -> tuple[int, int] | None:
        return self.keys[0].mki

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the value of an ``a=crypto`` line; raises ``SdpError``."""
        fields = value.split()
        if len(fields) < 3:
            raise SdpError(f"Bad a=crypto: {value!r}")
        tag_text, suite, key_text, *session_params = fields
        if not _TAG.fullmatch(tag_text):
            raise SdpError(f"Bad a=crypto tag: {tag_text!r}")
        if not _SUITE.fullmatch(suite):
            raise SdpError(f"Bad a=crypto suite: {suite!r}")
        raw_keys = key_text.split(";")
        if len(raw_keys) > _MAX_KEY_PARAMS:
            raise SdpError(f"Too many a=crypto key parameters ({len(raw_keys)})")
        keys = tuple(_parse_key_param(raw, suite) for raw in raw_keys)
        return cls(int(tag_text), suite, keys, tuple(session_params))

    @classmethod
    def generate(
        cls,
        tag: int,
        suite: str,
        rand: Callable[[int], bytes] = os.urandom,
    ) -> CryptoAttribute:
        """A fresh master key||salt for ``suite`` (one key, no lifetime, no MKI)."""
        length = KEY_SALT_LENGTHS.get(suite)
        if length is None:
            raise ValueError(f"unknown SRTP crypto suite {suite!r}")
        key_salt = rand(length)
        if len(key_salt) != length:
            raise ValueError(f"rand returned {len(key_salt)} bytes, {length} needed")
        return cls(tag, suite, (KeyParam(key_salt),))


def _lifetime_text(lifetime: int) -> str:
    # RFC 4568 writes lifetimes as powers of two ("2^20") when they are one.
    if lifetime > 0 and lifetime & (lifetime - 1) == 0:
        return f"2^{lifetime.bit_length() - 1}"
    return str(lifetime)


def _parse_key_param(raw: str, suite: str) -> KeyParam:
    method, sep, info = raw.partition(":")
    if not sep or method.lower() != "inline":
        raise SdpError(f"Bad a=crypto key method: {raw!r}")
    key_text, *rest = info.split("|")
    if len(rest) > 2:
        raise SdpError(f"Bad a=crypto key parameter: {raw!r}")
    key_salt = _decode_key(key_text)
    expected = KEY_SALT_LENGTHS.get(suite)
    if expected is not None and len(key_salt) != expected:
        raise SdpError(
            f"Bad a=crypto key: {suite} needs {expected} bytes of key and salt, got {len(key_salt)}"
        )
    lifetime: int | None = None
    mki: tuple[int, int] | None = None
    for item in rest:
        if ":" in item:
            if mki is not None:
                raise SdpError(f"Bad a=crypto key parameter: {raw!r}")
            mki = _parse_mki(item)
        else:
            if lifetime is not None or mki is not None:
                raise SdpError(f"Bad a=crypto key parameter: {raw!r}")
            lifetime = _parse_lifetime(item)
    return KeyParam(key_salt, lifetime, mki)


def _decode_key(text: str) -> bytes:
    # Some SRCs drop the base64 padding; restore it rather than reject the key.
    if not text or not _BASE64.fullmatch(text):
        raise SdpError(f"Bad a=crypto key: {text!r} is not base64")
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise SdpError(f"Bad a=crypto key: {text!r} is not base64") from None


def _parse_lifetime(text: str) -> int:
    if text.startswith("2^"):
        exponent = text[2:]
        if not _DECIMAL.fullmatch(exponent) or int(exponent) > 64:
            raise SdpError(f"Bad a=crypto lifetime: {text!r}")
        return 1 << int(exponent)
    if not _DECIMAL.fullmatch(text):
        raise SdpError(f"Bad a=crypto lifetime: {text!r}")
    return int(text)


def _parse_mki(text: str) -> tuple[int, int]:
    value, _, length = text.partition(":")
    if not _DECIMAL.fullmatch(value) or not _DECIMAL.fullmatch(length):
        raise SdpError(f"Bad a=crypto MKI: {text!r}")
    if not 1 <= int(length) <= 128:
        raise SdpError(f"Bad a=crypto MKI length: {text!r}")
    return int(value), int(length)
