"""Parse one whole SIP message (a UDP datagram or a framed stream message).

Job: bytes in, ``Request``/``Response`` out, or one ``SipSyntaxError`` saying what to
answer. The parser checks what RFC 3261 and the RFC 4475 torture tests need before a
UAS core may trust a message: the start line, header folding and names, framing by
Content-Length, presence and uniqueness of the mandatory headers, and the syntax of
the headers a UAS interprets (Via, From, To, Contact, Call-ID, CSeq, Max-Forwards,
Expires, Content-Type). Headers nobody interprets here (Date, Warning, ...) stay opaque.

Boundaries: no policy. Which methods, extensions and body types are acceptable is
``callvault.sip.validation``'s job; splitting a byte stream into messages is
``callvault.sip.framing``'s. Responses that fail are dropped (``status=None``, RFC 3261
and RFC 4475 3.1.2.19); failing requests carry the status to answer and ``partial``.

Header bytes are decoded as UTF-8 with invalid sequences replaced; the body stays bytes.
"""

from __future__ import annotations

import re

from callvault.sip.errors import SipSyntaxError
from callvault.sip.headers import WHITESPACE, Headers, is_token, parse_params, split_comma_values
from callvault.sip.message import SIP_VERSION, STANDARD_METHODS, Request, Response, parse_cseq
from callvault.sip.uri import NameAddr, SipUri, Via, parse_uri

# The empty line ending the header section; bare LF line ends are accepted (RFC 5118's
# archive uses them). No nested quantifiers: the search is linear.
HEAD_END = re.compile(rb"\r?\n\r?\n")

MAX_CONTENT_LENGTH = 2**31 - 1
_REQUIRED = ("Call-ID", "CSeq", "From", "To", "Via")
_SINGLE = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Type", "Expires")


def parse(data: bytes, *, max_headers: int = 200) -> Request | Response:
    """Parse one message; raise ``SipSyntaxError`` (and nothing else) when it is bad.

    Over UDP the body is framed by Content-Length: extra bytes after it are ignored
    (RFC 3261 18.3, RFC 4475 dblreq) and, without Content-Length, the body is the rest
    of the datagram. CRLFs before the start line are skipped (RFC 3261 7.5).
    """
    start = len(data) - len(data.lstrip(b"\r\n"))
    match = HEAD_END.search(data, start)
    if match is None:
        # A datagram may end right after the last header line (RFC 5118 4.10 files).
        head, rest = data[start:].rstrip(b"\r\n"), b""
    else:
        head, rest = data[start : match.start()], data[match.end() :]
    if not head:
        raise SipSyntaxError("Empty message", None)
    text = head.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = text.split("\n")
    fields, problem = _split_fields(lines[1:], max_headers)
    if "\r" in text:
        problem = "Malformed header section: bare CR"
    headers = Headers(fields)
    length_values = headers.get_raw_all("Content-Length")
    headers.remove("Content-Length")
    # Leading whitespace cannot make a response look like a request we would answer.
    if lines[0].lstrip(WHITESPACE)[:4].upper() == "SIP/":
        try:
            return _response(lines[0], headers, problem, length_values, rest)
        except SipSyntaxError as err:
            # RFC 3261 gives no way to answer a response: drop it (RFC 4475 3.1.2.19).
            raise SipSyntaxError(err.reason, None, fatal_for_stream=err.fatal_for_stream) from None
    words = lines[0].split()
    partial = None
    if len(words) >= 3:
        partial = Request(words[0], " ".join(words[1:-1]), headers.copy(), b"", words[-1])
    try:
        return _request(lines[0], headers, problem, length_values, rest)
    except SipSyntaxError as err:
        err.partial = partial
        raise


def content_length(values: list[str]) -> int | None:
    """The Content-Length from its header values (``None`` when absent).

    Every fault here breaks stream framing, hence ``fatal_for_stream`` (RFC 4475
    3.1.2.3, 3.3.9). The value is range-checked before it is ever used as a count.
    """
    if not values:
        return None
    if len(values) > 1:
        raise SipSyntaxError("Multiple Content-Length headers", fatal_for_stream=True)
    text = values[0].strip(WHITESPACE)
    if not text.isascii() or not text.isdigit():
        raise SipSyntaxError("Malformed Content-Length", fatal_for_stream=True)
    digits = text.lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > MAX_CONTENT_LENGTH:
        raise SipSyntaxError("Content-Length out of range", fatal_for_stream=True)
    return int(digits)


def head_content_length(head: bytes) -> int | None:
    """Content-Length read from a raw header section (for stream framing).

    Only the Content-Length lines (``Content-Length`` or compact ``l``, folded or
    not) are looked at, so that framing works even when other headers are bad.
    """
    values: list[str] = []
    current: list[str] | None = None
    for raw in head.split(b"\n")[1:]:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line[:1] in (" ", "\t"):
            if current is not None:
                current.append(line.strip(WHITESPACE))
            continue
        if current is not None:
            values.append(" ".join(p for p in current if p))
            current = None
        name, colon, value = line.partition(":")
        if colon and name.rstrip(WHITESPACE).lower() in ("content-length", "l"):
            current = [value.strip(WHITESPACE)]
    if current is not None:
        values.append(" ".join(p for p in current if p))
    return content_length(values)


def _split_fields(lines: list[str], max_headers: int) -> tuple[list[tuple[str, str]], str | None]:
    """Unfold header lines into (name, value) pairs; report the first fault, if any.

    The split never raises so that a failing request still yields the header lines
    needed to answer it; ``problem`` is raised by the caller at the right moment.
    """
    fields: list[tuple[str, str]] = []
    problem: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t"):
            # LWS folding (RFC 3261 7.3.1): CRLF + whitespace is one SP.
            if not fields:
                problem = problem or "Malformed header section: folded line after start line"
                continue
            cont = line.strip(WHITESPACE)
            name, value = fields[-1]
            if cont:
                fields[-1] = (name, f"{value} {cont}" if value else cont)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(WHITESPACE)
        if not colon:
            problem = problem or f"Malformed header line {line[:40]!r}"
        elif not is_token(name):
            problem = problem or f"Malformed header name {name[:40]!r}"
        else:
            if len(fields) == max_headers:
                return fields, "Too many headers"
            fields.append((name, value.strip(WHITESPACE)))
    return fields, problem


def _request(
    line: str, headers: Headers, problem: str | None, length_values: list[str], rest: bytes
) -> Request:
    method, uri = _request_line(line)
    if problem:
        raise SipSyntaxError(problem)
    body = _frame_body(length_values, rest)
    _check_headers(headers, method)
    return Request(method, uri, headers, body, SIP_VERSION)


def _response(
    line: str, headers: Headers, problem: str | None, length_values: list[str], rest: bytes
) -> Response:
    version, _, after = line.partition(" ")
    code, _, reason = after.partition(" ")
    if version.upper() != SIP_VERSION:
        raise SipSyntaxError("Version Not Supported")
    if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
        raise SipSyntaxError("Malformed status code")
    if problem:
        raise SipSyntaxError(problem)
    body = _frame_body(length_values, rest)
    _check_headers(headers, None)
    return Response(int(code), reason, headers, body, SIP_VERSION)


def _request_line(line: str) -> tuple[str, str]:
    """Method and Request-URI of ``Method SP Request-URI SP SIP-Version``.

    Strict on spacing (RFC 4475 lwsstart, trws, lwsruri: rejecting is acceptable and
    a recorder never needs to be liberal here).
    """
    if line != line.rstrip(WHITESPACE):
        raise SipSyntaxError("Malformed Request-Line: trailing whitespace")
    if line != line.lstrip(WHITESPACE):
        raise SipSyntaxError("Malformed Request-Line: leading whitespace")
    parts = line.replace("\t", " ").split(" ")
    if len(parts) < 3:
        raise SipSyntaxError("Malformed Request-Line")
    if "" in parts:
        raise SipSyntaxError("Malformed Request-Line: extra spaces")
    method, version = parts[0], parts[-1].upper()
    if not is_token(method):
        raise SipSyntaxError("Malformed Request-Line: bad method")
    if version != SIP_VERSION:
        major, dot, minor = version.removeprefix("SIP/").partition(".")
        if version.startswith("SIP/") and dot and _digits(major) and _digits(minor):
            raise SipSyntaxError("Version Not Supported", 505)
        raise SipSyntaxError("Malformed Request-Line: bad SIP-Version")
    if len(parts) > 3:
        raise SipSyntaxError("Bad Request-URI: embedded whitespace")
    uri = parts[1]
    if uri.startswith("<") or uri.endswith(">"):
        raise SipSyntaxError("Bad Request-URI: enclosed in <>")
    parsed = parse_uri(uri, what="Bad Request-URI")
    # RFC 3261 19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
    if isinstance(parsed, SipUri) and parsed.headers:
        raise SipSyntaxError("Bad Request-URI: headers not allowed")
    return method, uri


def _frame_body(length_values: list[str], rest: bytes) -> bytes:
    length = content_length(length_values)
    if length is None:
        return rest
    if length > len(rest):
        raise SipSyntaxError("Content-Length larger than message body")
    return rest[:length]


def _check_headers(headers: Headers, method: str | None) -> None:
    """Structural checks on the headers a UAS interprets (``method`` None: a response)."""
    index: dict[str, list[str]] = {}
    for name, value in headers:
        index.setdefault(name, []).append(value)
    for name in _REQUIRED:
        if name not in index:
            raise SipSyntaxError(f"Missing {name} header")
    for name in _SINGLE:
        if len(index.get(name, ())) > 1:
            raise SipSyntaxError(f"Multiple {name} headers")
    call_id = index["Call-ID"][0]
    if not call_id or any(ch.isspace() or ch < " " for ch in call_id):
        raise SipSyntaxError("Malformed Call-ID header")
    _, cseq_method = parse_cseq(index["CSeq"][0])
    # An unknown method with a mismatched CSeq should get 501 rather than 400 (RFC 4475
    # 3.1.2.18); the UAS core answers 501 to every unknown method, so leave it to it.
    if method is not None and cseq_method != method and method in STANDARD_METHODS:
        raise SipSyntaxError("CSeq method does not match request method")
    for name in ("From", "To"):
        NameAddr.parse(index[name][0], header=name)
    for raw in index["Via"]:
        for value in split_comma_values(raw, keep_empty=True):
            if not value:
                raise SipSyntaxError("Malformed Via header: empty value")
            Via.parse(value)
    for raw in index.get("Contact", ()):
        for value in split_comma_values(raw, keep_empty=True):
            if not value:
                raise SipSyntaxError("Malformed Contact header: empty value")
            if value == "*":
                if method != "REGISTER":
                    raise SipSyntaxError("Malformed Contact header: '*' outside REGISTER")
                continue
            NameAddr.parse(value, header="Contact")
    if method is not None and "Max-Forwards" in index:
        _check_number(index["Max-Forwards"][0], "Max-Forwards", 255)
    if "Expires" in index:
        _check_number(index["Expires"][0], "Expires", 2**32 - 1)
    if "Content-Type" in index:
        _check_content_type(index["Content-Type"][0])


def _check_number(value: str, name: str, limit: int) -> None:
    if not _digits(value):
        raise SipSyntaxError(f"Malformed {name} header")
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise SipSyntaxError(f"{name} out of range")


def _check_content_type(value: str) -> None:
    what = "Malformed Content-Type header"
    media, semi, params = value.partition(";")
    kind, slash, subtype = media.partition("/")
    if not slash or not is_token(kind.strip(WHITESPACE)) or not is_token(subtype.strip(WHITESPACE)):
        raise SipSyntaxError(what)
    parse_params(semi + params, what)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
