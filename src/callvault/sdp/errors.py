"""The one error type the SDP layer raises for a peer's bytes.

``status`` is the SIP status to answer with: 400 when the SDP cannot be parsed, 488
(Not Acceptable Here) when it parses but offers nothing the recorder can use.
"""

from __future__ import annotations

__all__ = ["SdpError"]


class SdpError(ValueError):
    """An SDP body a peer sent cannot be parsed or used."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
