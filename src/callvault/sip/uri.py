"""SIP addressing: SIP/SIPS, tel and other URIs, name-addr values and Via values.

Each wire type pairs ``parse`` with ``__str__`` and raises only ``SipSyntaxError``
(status 400) with a message saying which part is wrong; callers pass ``what`` (e.g.
``"Bad Request-URI"``) or ``header`` so the message names where the fault was found.

Grammar: RFC 3261 section 25 with the liberal readings RFC 4475 and RFC 5118 ask for:
display names glued to ``<`` (lwsdisp), the 3-colon IPv6 form (RFC 5118 4.10),
``received`` with or without brackets (RFC 5118 4.5). Unknown schemes are kept as
``AbsoluteUri`` so that the UAS core can answer 416 rather than 400.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import (
    WHITESPACE,
    format_params,
    is_token,
    parse_params,
    quote_string,
    read_quoted_string,
)

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_UNRESERVED = _ALNUM | frozenset("-_.!~*'()")
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/")
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,")
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$")
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$")
# RFC 3261 hostnames are LDH labels; "_" is not in the grammar but real deployments
# use it in internal names, and accepting it costs nothing.
_HOST_CHARS = _ALNUM | frozenset("-._")
_SCHEME_CHARS = _ALNUM | frozenset("+-.")
_TEL_CHARS = frozenset("0123456789abcdefABCDEF*#-.()")
_HEX = frozenset("0123456789abcdefABCDEF")


def _check_escaped(text: str, allowed: frozenset[str], what: str, part: str) -> None:
    """Every character is in ``allowed`` or part of a ``%HH`` escape."""
    if allowed.issuperset(text):
        return
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise SipSyntaxError(f"{what}: bad escape in {part}")
            i += 3
            continue
        if ch not in allowed:
            if ch in WHITESPACE:
                raise SipSyntaxError(f"{what}: embedded whitespace")
            raise SipSyntaxError(f"{what}: bad character {ch!r} in {part}")
        i += 1


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes (UTF-8; undecodable bytes survive as surrogates)."""
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        pair = text[i + 1 : i + 3]
        if ch == "%" and len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            raw.append(int(pair, 16))
            i += 3
            continue
        raw.extend(ch.encode("utf-8", "surrogateescape"))
        i += 1
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, allowed: frozenset[str]) -> str:
    """``%HH``-escape every character of ``text`` not in ``allowed`` (inverse of unescape)."""
    if allowed.issuperset(text):
        return text
    out: list[str] = []
    for ch in text:
        if ch in allowed:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _valid_ipv6(address: str) -> bool:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        # RFC 3261's ABNF admits "2001:db8:::192.0.2.1" (hexpart "::" then ":" IPv4);
        # RFC 5118 4.10 asks receivers to tolerate it, so read it as the 2-colon form.
        if ":::" in address and "." in address:
            return _valid_ipv6(address.replace(":::", "::", 1))
        return False
    return True


def parse_host(text: str, what: str) -> str:
    """Validate a host (hostname, IPv4 address or bracketed IPv6 reference)."""
    if not text:
        raise SipSyntaxError(f"{what}: missing host")
    if text[0] == "[":
        if text[-1] != "]" or not _valid_ipv6(text[1:-1]):
            raise SipSyntaxError(f"{what}: bad IPv6 reference {text[:60]!r}")
        return text
    if ":" in text:
        raise SipSyntaxError(f"{what}: IPv6 address must be enclosed in []")
    if not _HOST_CHARS.issuperset(text) or ".." in text or text[0] == ".":
        raise SipSyntaxError(f"{what}: bad host {text[:60]!r}")
    return text


def parse_hostport(text: str, what: str) -> tuple[str, int | None]:
    """``host[:port]`` -> (host, port); IPv6 references keep their brackets."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipSyntaxError(f"{what}: bad IPv6 reference {text[:60]!r}")
        host, rest = text[: close + 1], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise SipSyntaxError(f"{what}: bad text after IPv6 reference")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise SipSyntaxError(f"{what}: IPv6 address must be enclosed in []")
    else:
        host, colon, port_text_raw = text.partition(":")
        port_text = port_text_raw if colon else None
    port = None
    if port_text is not None:
        if not _is_number(port_text, 65535):
            raise SipSyntaxError(f"{what}: bad port {port_text[:20]!r}")
        port = int(port_text)
    return parse_host(host, what), port


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:``/``sips:`` URI; user, password, params and headers are unescaped."""

    host: str
    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str, *, what: str = "Malformed SIP URI") -> SipUri:
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise SipSyntaxError(f"{what}: not a SIP URI")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            # userinfo may hold ";", "?" and "," (user-unreserved) but never "@".
            userinfo, rest = rest[:at], rest[at + 1 :]
            user_text, pcolon, password_text = userinfo.partition(":")
            if not user_text:
                raise SipSyntaxError(f"{what}: empty user part")
            _check_escaped(user_text, _USER_CHARS, what, "user part")
            user = unescape(user_text)
            if pcolon:
                _check_escaped(password_text, _PASSWORD_CHARS, what, "password")
                password = unescape(password_text)
        rest, qmark, headers_text = rest.partition("?")
        hostport, *param_texts = rest.split(";")
        host, port = parse_hostport(hostport, what)
        params: dict[str, str | None] = {}
        for raw in param_texts:
            name, eq, value = raw.partition("=")
            if not name:
                raise SipSyntaxError(f"{what}: empty parameter")
            _check_escaped(name, _PARAM_CHARS, what, "parameter")
            _check_escaped(value, _PARAM_CHARS, what, "parameter")
            if eq and not value:
                raise SipSyntaxError(f"{what}: empty value for parameter {name[:40]!r}")
            params.setdefault(unescape(name).lower(), unescape(value) if eq else None)
        headers: list[tuple[str, str]] = []
        if qmark:
            for raw in headers_text.split("&"):
                hname, eq, hvalue = raw.partition("=")
                if not hname or not eq:
                    raise SipSyntaxError(f"{what}: bad header {raw[:40]!r}")
                _check_escaped(hname, _HEADER_CHARS, what, "headers")
                _check_escaped(hvalue, _HEADER_CHARS, what, "headers")
                headers.append((unescape(hname), unescape(hvalue)))
        return cls(host, scheme.lower(), user, password, port, params, tuple(headers))

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_CHARS))
            if self.password is not None:
                out += [":", escape(self.password, _PASSWORD_CHARS)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out += [";", escape(name, _PARAM_CHARS)]
            if value is not None:
                out += ["=", escape(value, _PARAM_CHARS)]
        if self.headers:
            pairs = (
                f"{escape(n, _HEADER_CHARS)}={escape(v, _HEADER_CHARS)}" for n, v in self.headers
            )
            out += ["?", "&".join(pairs)]
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, what: str = "Malformed tel URI") -> TelUri:
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() != "tel":
            raise SipSyntaxError(f"{what}: not a tel URI")
        number, *param_texts = rest.split(";")
        digits = number[1:] if number.startswith("+") else number
        if not digits or not _TEL_CHARS.issuperset(digits):
            raise SipSyntaxError(f"{what}: bad telephone number {number[:40]!r}")
        params: dict[str, str | None] = {}
        for raw in param_texts:
            name, eq, value = raw.partition("=")
            if not is_token(name):
                raise SipSyntaxError(f"{what}: bad parameter {raw[:40]!r}")
            _check_escaped(value, _PARAM_CHARS, what, "parameter")
            params.setdefault(name.lower(), value if eq else None)
        return cls(number, params)

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme SIP does not interpret, kept opaque (RFC 3261 absoluteURI)."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str, *, what: str = "Malformed URI") -> AbsoluteUri:
        scheme, colon, opaque = text.partition(":")
        if not colon or not scheme or not scheme[0].isalpha():
            raise SipSyntaxError(f"{what}: missing scheme")
        if not _SCHEME_CHARS.issuperset(scheme):
            raise SipSyntaxError(f"{what}: bad scheme {scheme[:40]!r}")
        if not opaque:
            raise SipSyntaxError(f"{what}: empty URI after scheme")
        for ch in opaque:
            if ch <= " " or ch == "\x7f" or ch in '<>"':
                if ch in WHITESPACE:
                    raise SipSyntaxError(f"{what}: embedded whitespace")
                raise SipSyntaxError(f"{what}: bad character {ch!r} in URI")
        return cls(scheme, opaque)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str, *, what: str = "Malformed URI") -> Uri:
    """Parse any URI: SIP/SIPS and tel are interpreted, other schemes kept opaque."""
    scheme = text.partition(":")[0].lower()
    if scheme in ("sip", "sips"):
        return SipUri.parse(text, what=what)
    if scheme == "tel":
        return TelUri.parse(text, what=what)
    return AbsoluteUri.parse(text, what=what)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A To/From/Contact/Route style value: optional display name, URI, header params.

    ``params`` are the header's parameters (``tag``, ``expires``, ...), never the URI's:
    in the addr-spec form (no ``<>``) everything after the first ``;`` belongs to the
    header (RFC 3261 20.10), which is why such a URI may not carry ``?`` headers.
    """

    uri: Uri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @classmethod
    def parse(cls, value: str, *, header: str = "name-addr") -> NameAddr:
        what = f"Malformed {header} header"
        text = value.strip(WHITESPACE)
        if not text:
            raise SipSyntaxError(f"{what}: empty value")
        display: str | None = None
        start = -1
        if text[0] == '"':
            quoted = read_quoted_string(text, 0)
            if quoted is None:
                raise SipSyntaxError(f"Unterminated quoted string in {header} header")
            display, after = quoted
            start = len(text) - len(text[after:].lstrip(WHITESPACE))
            if start >= len(text) or text[start] != "<":
                raise SipSyntaxError(f"{what}: expected '<' after display name")
        else:
            lt = text.find("<")
            if lt >= 0:
                words = text[:lt].split()
                # RFC 4475 3.1.1.6 (lwsdisp): a token display name glued to "<" is
                # accepted although the RFC 3261 ABNF requires LWS before it.
                if not all(is_token(w) for w in words):
                    raise SipSyntaxError(f"{what}: display name must be tokens or a quoted string")
                display = " ".join(words) if words else None
                start = lt
        if start >= 0:
            close = text.find(">", start)
            if close < 0:
                raise SipSyntaxError(f"{what}: missing '>'")
            inner = text[start + 1 : close]
            if inner != inner.strip() or any(ch in inner for ch in WHITESPACE):
                raise SipSyntaxError(f"{what}: whitespace inside <>")
            uri = parse_uri(inner, what=what)
            params = parse_params(text[close + 1 :], what)
            return cls(uri, display, params)
        uri_text, semi, rest = text.partition(";")
        uri_text = uri_text.rstrip(WHITESPACE)
        if any(ch in uri_text for ch in ",?"):
            raise SipSyntaxError(f"{what}: URI with ',' or '?' must be enclosed in <>")
        if any(ch in uri_text for ch in WHITESPACE):
            raise SipSyntaxError(f"{what}: embedded whitespace in URI")
        uri = parse_uri(uri_text, what=what)
        return cls(uri, None, parse_params(semi + rest, what))

    def __str__(self) -> str:
        name = "" if self.display_name is None else quote_string(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` address without the brackets RFC 5118 allows around IPv6."""
        value = self.params.get("received")
        return value[1:-1] if value and value.startswith("[") else value

    @property
    def rport(self) -> int | None:
        """The ``rport`` value, or ``None`` when absent or a bare flag (RFC 3581)."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return int(value) if value else None

    @classmethod
    def parse(cls, value: str) -> Via:
        what = "Malformed Via header"
        head, semi, rest = value.strip(WHITESPACE).partition(";")
        parts = head.split("/")
        if len(parts) != 3:
            raise SipSyntaxError(f"{what}: bad sent-protocol")
        name, version = parts[0].strip(WHITESPACE), parts[1].strip(WHITESPACE)
        transport_and_host = parts[2].split(None, 1)
        if not is_token(name) or not is_token(version) or len(transport_and_host) != 2:
            raise SipSyntaxError(f"{what}: bad sent-protocol")
        transport, sent_by = transport_and_host
        if not is_token(transport):
            raise SipSyntaxError(f"{what}: bad transport")
        host, port = parse_hostport(_join_around_colons(sent_by.strip(), what), what)
        params = parse_params(semi + rest, what)
        _check_via_params(params, what)
        return cls(transport.upper(), host, port, params, f"{name.upper()}/{version}")

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def _join_around_colons(sent_by: str, what: str) -> str:
    """``host : 5060`` -> ``host:5060`` (COLON = SWS ":" SWS); other LWS is an error."""
    words = sent_by.split()
    for left, right in itertools.pairwise(words):
        if not left.endswith(":") and not right.startswith(":"):
            raise SipSyntaxError(f"{what}: whitespace in sent-by")
    return "".join(words)


def _check_via_params(params: dict[str, str | None], what: str) -> None:
    branch = params.get("branch", "")
    if "branch" in params and (branch is None or not is_token(branch)):
        raise SipSyntaxError(f"{what}: bad branch")
    if "received" in params:
        received = params["received"] or ""
        bare = received[1:-1] if received.startswith("[") and received.endswith("]") else received
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            if not _valid_ipv6(bare):
                raise SipSyntaxError(f"{what}: bad received parameter") from None
    for name, limit in (("rport", 65535), ("ttl", 255)):
        number = params.get(name)
        if number is not None and not _is_number(number, limit):
            raise SipSyntaxError(f"{what}: bad {name} parameter")
    if "ttl" in params and params["ttl"] is None:
        raise SipSyntaxError(f"{what}: bad ttl parameter")


def _is_number(text: str, limit: int) -> bool:
    """ASCII digits whose value is at most ``limit`` (length checked before ``int``)."""
    return text.isascii() and text.isdigit() and len(text) <= len(str(limit)) and int(text) <= limit
