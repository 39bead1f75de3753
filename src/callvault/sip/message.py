"""SIP requests and responses (RFC 3261 section 7) as plain data.

``parse_message`` turns one datagram (or one framed TCP message) into a ``Request`` or
``Response``; ``bytes(message)`` serialises it with a correct Content-Length.
Content-Length is framing, not content: the parser consumes it (``body`` holds exactly
that many bytes) and does not keep it in ``headers``; serialisation writes it last.
``make_response`` builds a UAS response that copies Via, From, To, Call-ID and CSeq
(RFC 3261 8.2.6.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import Headers, is_token

SIP_VERSION = "SIP/2.0"

# Methods defined by RFC 3261 and its standard extensions. A UAS answers a method it
# knows but does not serve with 405, one it has never heard of with 501 (RFC 3261
# 8.2.1, 21.4.6, 21.5.2).
STANDARD_METHODS: frozenset[str] = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)


def header_param(value: str, name: str) -> str | None:
    """The value of ``;name=value`` in a header value (outside quotes and ``<...>``)."""
    in_quotes = False
    depth = 0
    start = None
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            in_quotes = not in_quotes
        elif not in_quotes and ch == "<":
            depth += 1
        elif not in_quotes and ch == ">":
            depth -= 1
        elif not in_quotes and depth == 0 and ch == ";" and start is None:
            start = i
    if start is None:
        return None
    for raw in value[start + 1 :].split(";"):
        key, _, val = raw.partition("=")
        if key.strip().lower() == name.lower():
            return val.strip().strip('"') if val else ""
    return None


@dataclass(slots=True)
class Request:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        start = f"{self.method} {self.uri} {self.version}"
        return _serialise(start, self.headers, self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id!r}>"

    @property
    def call_id(self) -> str:
        return (self.headers.get("Call-ID") or "").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def from_tag(self) -> str | None:
        return header_param(self.headers.get("From") or "", "tag")

    @property
    def to_tag(self) -> str | None:
        return header_param(self.headers.get("To") or "", "tag")

    @property
    def branch(self) -> str | None:
        """The branch parameter of the top Via."""
        vias = self.headers.get_all("Via")
        return header_param(vias[0], "branch") if vias else None


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        start = f"{self.version} {self.status} {self.reason}"
        return _serialise(start, self.headers, self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"

    @property
    def call_id(self) -> str:
        return (self.headers.get("Call-ID") or "").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def to_tag(self) -> str | None:
        return header_param(self.headers.get("To") or "", "tag")

    @property
    def branch(self) -> str | None:
        vias = self.headers.get_all("Via")
        return header_param(vias[0], "branch") if vias else None


Message = Request | Response


def parse_cseq(value: str) -> tuple[int, str]:
    """``"0009 INVITE"`` -> ``(9, "INVITE")``; raises ``SipSyntaxError`` when malformed.

    The number must be below 2**31 (RFC 3261 8.1.1.5); leading zeros are allowed.
    """
    parts = value.split()
    if len(parts) != 2 or not _is_digits(parts[0]) or not is_token(parts[1]):
        raise SipSyntaxError("Malformed CSeq header")
    digits = parts[0].lstrip("0") or "0"
    if len(digits) > 10 or int(digits) >= 2**31:
        raise SipSyntaxError("CSeq number out of range")
    return int(digits), parts[1]


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _serialise(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    for name, value in headers:
        if name == "Content-Length":
            continue
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def make_response(
    request: Request,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` per RFC 3261 8.2.6.2 (Via/From/To/Call-ID/CSeq copied).

    ``to_tag`` is added to To unless the request's To already has a tag.
    """
    out = Headers()
    for via in request.headers.get_raw_all("Via"):
        out.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag and header_param(value, "tag") is None:
            value = f"{value};tag={to_tag}"
        out.add(name, value)
    for name, value in headers or []:
        out.add(name, value)
    if body and content_type:
        out.set("Content-Type", content_type)
    return Response(status, reason, out, body)


def parse_message(data: bytes, *, max_headers: int = 200) -> Request | Response:
    """Parse one whole SIP message (a UDP datagram or a framed TCP message).

    Raises ``SipSyntaxError`` with the status to answer. Implemented in
    ``callvault.sip.parser``; re-exported here for callers.
    """
    # Imported here: the parser module imports this one.
    from callvault.sip.parser import parse

    return parse(data, max_headers=max_headers)
