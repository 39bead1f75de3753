"""Answering a request the parser refused (RFC 3261 8.2 / 16.3 and RFC 4475's advice).

A message that fails to parse still needs a 400 (or 505, 513) that its sender can
match to its transaction, so we scrape the headers a response must copy (Via, From,
To, Call-ID, CSeq) from the raw bytes as leniently as possible. A response that fails
to parse is dropped, as is anything whose Via cannot be found (a reply could not be
matched, and might be aimed at a victim).
"""

from __future__ import annotations

from callvault.sip.headers import canonical_name

_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def _unfolded_header_lines(data: bytes) -> tuple[str, list[str]]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = text.lstrip("\n").split("\n")
    start, rest = lines[0], lines[1:]
    unfolded: list[str] = []
    for line in rest:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    return start, unfolded


def error_reply(data: bytes, status: int, reason: str) -> bytes | None:
    """The bytes of a ``status`` reply to the unparseable request ``data``, or None."""
    start, lines = _unfolded_header_lines(data)
    if start.upper().startswith("SIP/") or not start.strip():
        return None  # a response (or nothing): never answer one
    copied: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        canon = canonical_name(name)
        if canon in _COPIED:
            copied.append((canon, value.strip()))
    if not any(name == "Via" for name, _ in copied):
        return None
    safe_reason = "".join(ch for ch in reason if ch.isprintable())[:200]
    out = [f"SIP/2.0 {status} {safe_reason}"]
    out.extend(f"{name}: {value}" for name, value in copied)
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8")
