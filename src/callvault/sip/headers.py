"""An ordered, case-insensitive SIP header list that knows compact forms.

Headers keep their arrival order and the raw value text (after unfolding). Names are
canonicalised on the way in (``v`` -> ``Via``, ``cseq`` -> ``CSeq``) so that lookups
and serialisation agree. Comma-separated multi-value headers are split on demand by
``get_all``, honouring quoted strings and angle brackets.

The lexical pieces of RFC 3261 header syntax that several parsers share live here too:
the token alphabet, quoted strings and ``;name=value`` parameter lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from callvault.sip.errors import SipSyntaxError

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "RAck",
        "Reason",
        "Record-Route",
        "Recv-Info",
        "Refer-To",
        "Referred-By",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "RSeq",
        "Server",
        "Session-Expires",
        "Session-ID",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

# Headers whose values may be combined with commas (RFC 3261 7.3.1). Others
# (e.g. Date, WWW-Authenticate) contain commas inside one value.
MULTI_VALUE: frozenset[str] = frozenset(
    {
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow",
        "Allow-Events",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Proxy-Require",
        "Record-Route",
        "Require",
        "Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    }
)


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    stripped = name.strip()
    lowered = stripped.lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, stripped)


def split_comma_values(value: str, *, keep_empty: bool = False) -> list[str]:
    """Split a header value on top-level commas (not inside quotes or ``<...>``).

    Empty elements are dropped unless ``keep_empty`` (a strict parser wants to see
    ``a,,b`` to reject it; RFC 3261 grammar has no empty list elements).
    """
    if '"' in value or "<" in value:
        parts = _split_commas_slowly(value)
    else:
        parts = [p.strip() for p in value.split(",")]
    if keep_empty:
        return parts
    return [p for p in parts if p]


def _split_commas_slowly(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            current.append(ch)
            continue
        if ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


# RFC 3261 25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS: frozenset[str] = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# gen-value = token / host / quoted-string: a host adds ":" "[" "]" (IPv6) to the token set.
_GEN_VALUE_CHARS = TOKEN_CHARS | frozenset(":[]")
WHITESPACE = " \t"


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


def read_quoted_string(text: str, start: int) -> tuple[str, int] | None:
    """Read the quoted string opening at ``text[start] == '"'``.

    Returns the unescaped content and the index just after the closing quote, or
    ``None`` when the string is not terminated. A quoted-pair may escape any character
    but CR and LF (RFC 3261 25.1), which unfolded header values no longer contain.
    """
    out: list[str] = []
    i = start + 1
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= end:
                return None
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return None


def quote_string(text: str) -> str:
    """``text`` as a quoted-string, escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not inside a quoted string."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == '"':
            quoted = read_quoted_string(text, i)
            i = end if quoted is None else quoted[1]
            continue
        if ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name[=value]`` header parameters (RFC 3261 generic-param).

    ``text`` is empty or starts with ``;`` (LWS around ``;`` and ``=`` allowed). Names
    are lower-cased (they compare case-insensitively); a quoted value keeps its quotes
    so that it serialises unchanged; a flag parameter maps to ``None``. The first of
    duplicate names wins. Errors read ``f"{what}: ..."``.
    """
    params: dict[str, str | None] = {}
    text = text.strip(WHITESPACE)
    if not text:
        return params
    if text[0] != ";":
        raise SipSyntaxError(f"{what}: expected ';' before parameters")
    for raw in split_outside_quotes(text[1:], ";"):
        name, eq, value = raw.partition("=")
        name = name.strip(WHITESPACE)
        value = value.strip(WHITESPACE)
        if not name:
            raise SipSyntaxError(f"{what}: empty parameter")
        if not is_token(name):
            raise SipSyntaxError(f"{what}: bad parameter name {name[:40]!r}")
        if eq and not _is_gen_value(value):
            raise SipSyntaxError(f"{what}: bad value for parameter {name[:40]!r}")
        params.setdefault(name.lower(), value if eq else None)
    return params


def _is_gen_value(value: str) -> bool:
    if value.startswith('"'):
        quoted = read_quoted_string(value, 0)
        return quoted is not None and quoted[1] == len(value)
    return bool(value) and _GEN_VALUE_CHARS.issuperset(value)


def format_params(params: dict[str, str | None]) -> str:
    """The ``;name=value`` text for ``params`` (inverse of ``parse_params``)."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


class Headers:
    """Ordered multi-map of SIP headers with case-insensitive names."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name).lower()
        return any(n.lower() == key for n, _ in self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first raw value of ``name`` (not comma-split), or ``default``."""
        key = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_raw_all(self, name: str) -> list[str]:
        """Every header line's raw value for ``name`` in order (not comma-split)."""
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, comma-split for multi-value headers."""
        canon = canonical_name(name)
        raw = self.get_raw_all(canon)
        if canon not in MULTI_VALUE:
            return raw
        values: list[str] = []
        for v in raw:
            values.extend(split_comma_values(v))
        return values

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one with ``value`` (kept in place of the first)."""
        canon = canonical_name(name)
        key = canon.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() == key:
                if not placed:
                    out.append((canon, value))
                    placed = True
                continue
            out.append((n, v))
        if not placed:
            out.append((canon, value))
        self._items = out

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone
