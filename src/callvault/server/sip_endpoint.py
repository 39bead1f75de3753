"""Where SIP bytes meet the SRS: parse, validate, run transactions, dispatch events.

This is the asyncio adapter around the sans-IO ``TransactionLayer``: it feeds it
messages with ``now`` taken from the loop's monotonic clock, sends what it returns,
and keeps one loop timer armed at the layer's earliest deadline. Nothing a peer sends
can raise out of here: a bad message becomes a reply (or a silent drop) and a count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from callvault.recording.srs import (
    ACCEPTED_BODY_TYPES,
    ALLOWED_METHODS,
    SUPPORTED_EXTENSIONS,
    SessionRecordingServer,
)
from callvault.server.sip_transport import SipTransports
from callvault.sip.errors import SipSyntaxError
from callvault.sip.events import (
    AckReceived,
    AckTimedOut,
    CancelReceived,
    Event,
    Peer,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    TransactionTimedOut,
)
from callvault.sip.message import Request, Response, make_response
from callvault.sip.parser import parse
from callvault.sip.reject import error_reply
from callvault.sip.transaction import TransactionLayer, TransactionStateError
from callvault.sip.validation import check_request

log = logging.getLogger(__name__)

KNOWN_METHODS = frozenset(
    {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "PRACK"}
)


class SipEndpoint:
    def __init__(self, transactions: TransactionLayer, *, max_headers: int = 200) -> None:
        self.transactions = transactions
        self.max_headers = max_headers
        self.transports: SipTransports | None = None
        self.srs: SessionRecordingServer | None = None
        self.bad_messages = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    # -- from the transports ---------------------------------------------------------
    def on_message(self, data: bytes, peer: Peer) -> None:
        try:
            message = parse(data, max_headers=self.max_headers)
        except SipSyntaxError as exc:
            self.on_framing_error(exc, peer, data)
            return
        try:
            if isinstance(message, Request):
                events = self.transactions.receive_request(message, peer, self.now())
            else:
                events = self.transactions.receive_response(message, peer, self.now())
            self._handle(events)
        except Exception:
            # A peer must never be able to crash the endpoint; log and drop.
            log.exception("processing a SIP message from %s:%d failed", peer.host, peer.port)

    def on_framing_error(self, error: SipSyntaxError, peer: Peer, data: bytes = b"") -> None:
        self.bad_messages += 1
        log.info(
            "bad SIP message from %s:%d: %s (%s)",
            peer.host,
            peer.port,
            error.reason,
            error.status or "dropped",
        )
        if error.status is None or self.transports is None:
            return
        reply: bytes | None = None
        if error.partial is not None and error.partial.headers.get("Via"):
            # What the parser could read of the request: enough to address a reply.
            reply = bytes(make_response(error.partial, error.status, error.reason))
        elif data:
            reply = error_reply(data, error.status, error.reason)
        if reply is not None:
            self.transports.send_raw(reply, peer)

    # -- to the transaction user -----------------------------------------------------
    def respond(self, transaction_id: str, response: Response) -> None:
        try:
            events = self.transactions.send_response(transaction_id, response, self.now())
        except TransactionStateError as exc:
            # E.g. a 487 after CANCEL raced the 200 of the same INVITE: the first won.
            log.info("response %d not sent: %s", response.status, exc)
            return
        self._handle(events)

    def send_request(self, request: Request, peer: Peer) -> None:
        _, events = self.transactions.send_request(request, peer, self.now())
        self._handle(events)

    def _handle(self, events: Iterable[Event]) -> None:
        srs = self.srs
        for event in events:
            if isinstance(event, SendMessage):
                if self.transports is not None:
                    self.transports.send(event.message, event.peer)
            elif isinstance(event, RequestReceived):
                self._dispatch(event)
            elif srs is None:
                continue
            elif isinstance(event, AckReceived):
                srs.on_ack(event.request)
            elif isinstance(event, CancelReceived):
                srs.on_cancel(event.invite_transaction_id)
            elif isinstance(event, AckTimedOut):
                srs.on_ack_timeout(event.request)
            elif isinstance(event, ResponseReceived | TransactionTimedOut):
                pass  # answers to our BYEs: nothing depends on them
        self._arm_timer()

    def _dispatch(self, event: RequestReceived) -> None:
        request = event.request
        rejection = check_request(
            request,
            allowed_methods=ALLOWED_METHODS,
            supported_extensions=SUPPORTED_EXTENSIONS,
            accepted_body_types=ACCEPTED_BODY_TYPES,
            known_methods=KNOWN_METHODS,
        )
        if rejection is not None:
            response = make_response(
                request, rejection.status, rejection.reason, headers=list(rejection.headers)
            )
            self.respond(event.transaction_id, response)
            return
        if self.srs is None:
            self.respond(event.transaction_id, make_response(request, 503, "Starting Up"))
            return
        self.srs.on_request(request, event.peer, event.transaction_id)

    # -- timers ------------------------------------------------------------------------
    def _arm_timer(self) -> None:
        deadline = self.transactions.get_timer()
        if self._timer is not None:
            if deadline is not None and abs(self._timer.when() - deadline) < 1e-3:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._handle(self.transactions.handle_timer(self.now()))
        except Exception:
            log.exception("SIP timer handling failed")
            self._arm_timer()
