"""Split a SIP byte stream (TCP/TLS) into whole messages, sans-IO.

``StreamFramer.feed(data)`` returns, in order, every item the new bytes complete:

- ``bytes``: one whole message (header section + exactly Content-Length body octets),
  ready for ``callvault.sip.parser.parse``;
- ``KEEPALIVE_PING`` (``b"\\r\\n\\r\\n"``, which no message can equal): an RFC 5626
  4.4.1 double-CRLF keep-alive; answer it by writing ``KEEPALIVE_PONG`` (one CRLF);
- ``SipSyntaxError`` with ``fatal_for_stream=True``: the stream cannot be framed any
  more. Answer it when ``status`` is set (``partial`` holds the request as far as it
  could be read) and close the connection; the framer ignores all later input.

Choices (RFC 3261 18.3, 7.5, 20.14):

- Content-Length is mandatory on a stream. A message without one is a fatal 400:
  guessing "no body" would read a body, if there is one, as the next message.
- A malformed, negative, out-of-range or repeated Content-Length is a fatal 400.
- Single CRLFs (or bare LFs) between messages are skipped silently.
- The buffer is bounded: a header section, or a whole message, longer than
  ``max_message_size`` is a fatal 513 "Message Too Large".
Failing messages that start with ``SIP/`` (responses) carry ``status=None``: drop.
"""

from __future__ import annotations

from callvault.sip.errors import SipSyntaxError
from callvault.sip.message import Request
from callvault.sip.parser import HEAD_END, head_content_length, parse

KEEPALIVE_PING = b"\r\n\r\n"
KEEPALIVE_PONG = b"\r\n"


class StreamFramer:
    """Reassembles SIP messages from one stream connection's bytes."""

    __slots__ = ("_buffer", "_failed", "_max", "_pending", "_scan_from")

    def __init__(self, max_message_size: int) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        # Where to resume looking for the blank line: bytes before it were searched.
        self._scan_from = 0
        # Length of the message whose head has been read and whose body is awaited.
        self._pending: int | None = None
        self._failed = False

    @property
    def failed(self) -> bool:
        """True after a fatal error: the connection must be closed."""
        return self._failed

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | SipSyntaxError]:
        """Add received bytes; return the messages, pings and errors they complete."""
        if self._failed:
            return []
        self._buffer += data
        out: list[bytes | SipSyntaxError] = []
        while (item := self._next()) is not None:
            out.append(item)
            if isinstance(item, SipSyntaxError):
                self._failed = True
                self._buffer.clear()
                break
        return out

    def _next(self) -> bytes | SipSyntaxError | None:
        buf = self._buffer
        if self._pending is not None:
            return self._take(self._pending)
        while buf and buf[0] in b"\r\n":
            if buf.startswith(KEEPALIVE_PING):
                del buf[:4]
                return KEEPALIVE_PING
            if len(buf) < len(KEEPALIVE_PING) and KEEPALIVE_PING.startswith(buf):
                return None  # may still become a ping
            del buf[:1]
            self._scan_from = 0
        if not buf:
            return None
        match = HEAD_END.search(buf, self._scan_from)
        if match is None:
            if len(buf) > self._max:
                cut = buf.rfind(b"\n", 0, self._max)
                return self._error(bytes(buf[: max(cut, 0)]), "Message Too Large", 513)
            # A blank line is at most 4 bytes: the next search need not look further back.
            self._scan_from = max(0, len(buf) - 3)
            return None
        head = bytes(buf[: match.start()])
        try:
            length = head_content_length(head)
        except SipSyntaxError as err:
            return self._error(head, err.reason, 400)
        if length is None:
            return self._error(head, "Missing Content-Length header on a stream transport", 400)
        total = match.end() + length
        if total > self._max:
            return self._error(head, "Message Too Large", 513)
        return self._take(total)

    def _take(self, total: int) -> bytes | None:
        if len(self._buffer) < total:
            self._pending = total
            return None
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        self._pending = None
        self._scan_from = 0
        return message

    @staticmethod
    def _error(head: bytes, reason: str, status: int) -> SipSyntaxError:
        if head[:4].upper() == b"SIP/":
            return SipSyntaxError(reason, None, fatal_for_stream=True)
        return SipSyntaxError(reason, status, fatal_for_stream=True, partial=_partial(head))


def _partial(head: bytes) -> Request | None:
    """The request whose head is ``head``, as far as it can be read (for the answer)."""
    try:
        message = parse(head)
    except SipSyntaxError as err:
        return err.partial
    return message if isinstance(message, Request) else None
