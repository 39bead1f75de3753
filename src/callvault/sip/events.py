"""What the SIP transaction layer tells its caller, as frozen slotted dataclasses.

``TransactionLayer`` (``callvault.sip.transaction``) returns lists of these; the
asyncio side sends every ``SendMessage`` and dispatches the others on their type to the
transaction user (the SRS core, later a B2BUA). ``Peer`` names a transport endpoint:
where a message came from, or where one goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.sip.message import Request, Response

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss", "sctp"})


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote transport address; ``connection_id`` names the TCP connection, if any."""

    transport: str  # "udp", "tcp" or "tls", lower case
    host: str
    port: int
    connection_id: int | None = None

    @property
    def reliable(self) -> bool:
        """True for stream transports, where SIP does no retransmission of its own."""
        return self.transport.lower() in RELIABLE_TRANSPORTS


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Write ``message`` to ``peer`` (a response goes back where its request came from)."""

    message: Request | Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new server transaction for the TU (never ACK): answer via ``send_response``."""

    request: Request
    peer: Peer
    transaction_id: str


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (its own request, RFC 3261 13.3.1.4) for the dialog layer.

    ACKs for 300-699 finals are absorbed by their INVITE server transaction.
    """

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched a pending INVITE; the layer already answered the CANCEL 200.

    The TU must now answer the INVITE (``invite_transaction_id``) with 487.
    """

    request: Request
    peer: Peer
    invite_transaction_id: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction (retransmitted finals are absorbed)."""

    response: Response
    transaction_id: str


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Client: Timer B or F fired (treat as 408). Server INVITE: Timer H (no ACK)."""

    transaction_id: str
    method: str


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """A 2xx to ``request`` (an INVITE) was never ACKed within 64*T1: BYE the dialog."""

    transaction_id: str
    request: Request


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction is gone: its id will never appear again."""

    transaction_id: str


Event = (
    SendMessage
    | RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimedOut
    | AckTimedOut
    | TransactionTerminated
)

__all__ = [
    "AckReceived",
    "AckTimedOut",
    "CancelReceived",
    "Event",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "SendMessage",
    "TransactionTerminated",
    "TransactionTimedOut",
]
