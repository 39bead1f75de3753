"""An ordered, case-insensitive SIP header list that knows compact forms.

Headers keep their arrival order and the raw value text (after unfolding). Names are
canonicalised on the way in (``v`` -> ``Via``, ``cseq`` -> ``CSeq``) so that lookups
and serialisation agree. Comma-separated multi-value headers are split on demand by
``get_all``, honouring quoted strings and angle brackets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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


def split_comma_values(value: str) -> list[str]:
    """Split a header value on top-level commas (not inside quotes or ``<...>``)."""
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
    return [p for p in parts if p]


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
