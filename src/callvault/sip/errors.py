"""The one error type a peer's bytes can raise in the SIP layer.

A ``SipSyntaxError`` is a *remote* error: it carries the SIP status the element should
answer with (400 with a reason naming the fault, 505, 513, ...) or ``status=None`` when
the RFC says to drop the message silently (a malformed response, say).
"""

from __future__ import annotations


class SipSyntaxError(ValueError):
    """A message a peer sent could not be accepted.

    ``status``/``reason`` say what to answer (``status is None``: drop silently).
    ``fatal_for_stream`` is set when a stream transport cannot find the next message
    (bad Content-Length): the connection must be closed after answering.
    """

    def __init__(
        self,
        reason: str,
        status: int | None = 400,
        *,
        fatal_for_stream: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.fatal_for_stream = fatal_for_stream
