"""MIME bodies of SIP messages (RFC 2046 section 5.1, RFC 5621): split a body into parts.

A SIPREC INVITE carries ``multipart/mixed`` with an SDP part and an rs-metadata part;
a re-INVITE or UPDATE may carry either alone. ``parse_body`` turns any message body into
a list of ``BodyPart`` (a non-multipart body is one part). It only frames: what a part
means is decided by ``callvault.siprec.offer``.

Real Session Recording Clients bend RFC 2046, so the splitter is lenient where the
intent is clear: a preamble before the first delimiter (Cisco starts with an empty
line), a missing closing delimiter (SEMS), LF instead of CRLF, transport padding after
a delimiter (Oracle), part headers without a space after the colon (BroadWorks). What
cannot be framed raises ``MultipartError``; the core answers 400 with its text. The
number of parts and of headers per part is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callvault.sip.headers import Headers

__all__ = ["MAX_HEADERS_PER_PART", "MAX_PARTS", "BodyPart", "MultipartError", "parse_body"]

MAX_PARTS = 16
MAX_HEADERS_PER_PART = 32
# RFC 2046 limits a boundary to 70 characters; leave room for sloppy generators.
_MAX_BOUNDARY = 200


class MultipartError(ValueError):
    """A message body that cannot be split into parts; answer ``status`` (400)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(slots=True)
class BodyPart:
    """One MIME body part: its Content-Type value, its own headers and its bytes."""

    content_type: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __repr__(self) -> str:
        return f"<BodyPart {self.content_type!r} {len(self.body)} bytes>"

    @property
    def mime_type(self) -> str:
        """``type/subtype`` in lower case, without parameters (``""`` when unknown)."""
        return media_type(self.content_type)

    @property
    def content_disposition(self) -> str | None:
        """The Content-Disposition value as sent (``None`` when absent)."""
        value = self.headers.get("Content-Disposition")
        return value.strip() if value is not None else None

    @property
    def disposition_type(self) -> str | None:
        """The disposition type alone, lower case (``"recording-session"``)."""
        value = self.content_disposition
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()


def media_type(content_type: str) -> str:
    """``"Multipart/Mixed; boundary=x"`` -> ``"multipart/mixed"``."""
    return content_type.split(";", 1)[0].strip().lower()


def content_type_params(content_type: str) -> dict[str, str]:
    """The parameters of a Content-Type value, names lower-cased, quotes removed."""
    params: dict[str, str] = {}
    for raw in _split_params(content_type)[1:]:
        name, sep, value = raw.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.strip().lower()] = value
    return params


def _split_params(value: str) -> list[str]:
    """Split on ``;`` outside double quotes."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return out


def parse_body(
    content_type: str,
    body: bytes,
    *,
    disposition: str | None = None,
    max_parts: int = MAX_PARTS,
) -> list[BodyPart]:
    """Split a message body into its parts.

    ``multipart/*`` bodies are split on their boundary, one nested ``multipart/*`` level
    is flattened into the result. Any other body is returned as one part whose headers
    hold ``content_type`` (and ``disposition``, the message's Content-Disposition, when
    given). An empty body has no parts. Raises ``MultipartError``.
    """
    if not body:
        return []
    if not media_type(content_type).startswith("multipart/"):
        return [_single_part(content_type, body, disposition)]
    return _parse_multipart(content_type, body, depth=0, max_parts=max_parts)


def _single_part(content_type: str, body: bytes, disposition: str | None) -> BodyPart:
    headers = Headers()
    if content_type:
        headers.add("Content-Type", content_type.strip())
    if disposition is not None:
        headers.add("Content-Disposition", disposition.strip())
    return BodyPart(content_type.strip(), headers, body)


def _boundary(content_type: str) -> bytes:
    boundary = content_type_params(content_type).get("boundary")
    if boundary is None or boundary == "":
        raise MultipartError("multipart body without a boundary parameter")
    if len(boundary) > _MAX_BOUNDARY:
        raise MultipartError(f"multipart boundary longer than {_MAX_BOUNDARY} characters")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError("multipart boundary is not ASCII") from None


def _lines(body: bytes) -> list[tuple[int, int, int]]:
    """``(start, end_of_content, start_of_next_line)`` per line; LF or CRLF."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    size = len(body)
    while pos < size:
        nl = body.find(b"\n", pos)
        if nl < 0:
            out.append((pos, size, size))
            break
        end = nl - 1 if nl > pos and body[nl - 1] == 0x0D else nl
        out.append((pos, end, nl + 1))
        pos = nl + 1
    return out


def _parse_multipart(
    content_type: str, body: bytes, *, depth: int, max_parts: int
) -> list[BodyPart]:
    boundary = _boundary(content_type)
    delimiter = b"--" + boundary
    closing = delimiter + b"--"
    # Each part runs from just after its delimiter line to the line break that
    # precedes the next delimiter (RFC 2046: that CRLF belongs to the delimiter).
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    closed = False
    for start, end, after in _lines(body):
        line = body[start:end].rstrip(b" \t")
        if line in (delimiter, closing):
            if part_start is not None:
                spans.append((part_start, max(part_start, _line_break_start(body, start))))
                if len(spans) > max_parts:
                    raise MultipartError(f"multipart body has more than {max_parts} parts")
            if line == closing:
                closed = True
                break
            part_start = after
    if part_start is None:
        raise MultipartError(
            f"multipart body has no delimiter line for boundary {boundary.decode()!r}"
        )
    if not closed:
        # No closing delimiter (seen from SEMS): the last part runs to the end.
        spans.append((part_start, len(body)))
        if len(spans) > max_parts:
            raise MultipartError(f"multipart body has more than {max_parts} parts")
    parts: list[BodyPart] = []
    for number, (first, last) in enumerate(spans, start=1):
        part = _parse_part(body[first:last], number)
        if part.mime_type.startswith("multipart/"):
            if depth >= 1:
                raise MultipartError("multipart body nested more than one level deep")
            parts.extend(
                _parse_multipart(part.content_type, part.body, depth=depth + 1, max_parts=max_parts)
            )
        else:
            parts.append(part)
        if len(parts) > max_parts:
            raise MultipartError(f"multipart body has more than {max_parts} parts")
    return parts


def _line_break_start(body: bytes, line_start: int) -> int:
    """Where the line break ending the previous line begins (CRLF or LF)."""
    if line_start == 0:
        return 0
    pos = line_start - 1  # the LF
    if pos > 0 and body[pos - 1] == 0x0D:
        pos -= 1
    return pos


def _parse_part(raw: bytes, number: int) -> BodyPart:
    headers = Headers()
    lines = _lines(raw)
    body_start: int | None = None
    current_name: str | None = None
    current_value = ""
    count = 0
    for start, end, after in lines:
        line = raw[start:end]
        if not line.strip():
            body_start = after
            break
        text = line.decode("utf-8", "replace")
        if text[0] in " \t" and current_name is not None:
            current_value += " " + text.strip()
            continue
        if current_name is not None:
            headers.add(current_name, current_value)
        name, sep, value = text.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise MultipartError(f"body part {number}: bad header line {text!r}")
        count += 1
        if count > MAX_HEADERS_PER_PART:
            raise MultipartError(f"body part {number}: more than {MAX_HEADERS_PER_PART} headers")
        current_name, current_value = name.strip(), value.strip()
    if current_name is not None:
        headers.add(current_name, current_value)
    if body_start is None:
        # Only header lines and no blank line: a part with an empty body.
        body_start = len(raw)
    # RFC 2046 5.1: a part without Content-Type is text/plain.
    content_type = headers.get("Content-Type") or "text/plain"
    return BodyPart(content_type.strip(), headers, raw[body_start:])
