"""The one error type a peer's bytes can raise in the SIP layer.

A ``SipSyntaxError`` is a *remote* error: it carries the SIP status the element should
answer with (400 with a reason naming the fault, 505, 513, ...) or ``status=None`` when
the RFC says to drop the message silently (a malformed response, say).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callvault.sip.message import Request


class SipSyntaxError(ValueError):
    """A message a peer sent could not be accepted.

    ``status``/``reason`` say what to answer (``status is None``: drop silently).
    ``fatal_for_stream`` is set when a stream transport cannot find the next message
    (bad Content-Length): the connection must be closed after answering.
    ``partial`` is the offending request as far as its start line and header lines
    could be read (values unchecked, no body), so that the caller can build the error
    response (``make_response(err.partial, err.status, err.reason)``); it is ``None``
    for responses and for requests whose start line could not be read.
    """

    def __init__(
        self,
        reason: str,
        status: int | None = 400,
        *,
        fatal_for_stream: bool = False,
        partial: Request | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.fatal_for_stream = fatal_for_stream
        self.partial = partial

    def __repr__(self) -> str:
        return f"SipSyntaxError({self.reason!r}, status={self.status})"
