"""The SIP transaction layer (RFC 3261 section 17, updated by RFC 6026), sans-IO.

``TransactionLayer`` takes parsed requests and responses with the ``Peer`` they came
from and the current time, and returns events (``callvault.sip.events``): messages to
send and what the transaction user (TU) must know. It owns retransmissions, matching
(17.1.3, 17.2.3 with the RFC 2543 fallback), the automatic 100 Trying, CANCEL
answering, ACK generation for non-2xx finals, and, for convenience, the UAS core's 2xx
retransmission until the ACK (13.3.1.4). It does not parse, route (18.2.2: responses go
back to the request's source), or know about dialogs beyond the ACK-for-2xx key.
Timers follow aioquic: ``get_timer()`` gives the earliest deadline, the caller calls
``handle_timer(now)`` when it passes. The state machines themselves are data, in
``callvault.sip.timers``; this module interprets them and keeps the indexes.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from random import Random

from callvault.sip.dialog import MAGIC_COOKIE, make_ack, make_cancel, new_branch, new_tag
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
    TransactionTerminated,
    TransactionTimedOut,
)
from callvault.sip.message import Request, Response, header_param, make_response
from callvault.sip.timers import (
    ALIVE,
    INITIAL,
    TABLES,
    Action,
    Arm,
    Do,
    Input,
    Kind,
    State,
    Step,
    Timer,
    TimerValues,
)


class TransactionStateError(Exception):
    """A local error: the TU asked a transaction for something it cannot do."""


_TU_STEPS = frozenset({Input.TU_1XX, Input.TU_2XX, Input.TU_FINAL})
_SERVER_KINDS = frozenset({Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER})


@dataclass(slots=True, eq=False)
class _Transaction:
    id: str
    kind: Kind
    state: State
    request: Request
    peer: Peer
    keys: list[Hashable] = field(default_factory=list)
    last_response: Response | None = None
    ack: Request | None = None
    acked: bool = False
    timers: dict[Timer, tuple[float, int]] = field(default_factory=dict)
    intervals: dict[Timer, float] = field(default_factory=dict)


class TransactionLayer:
    """Every live SIP transaction of one endpoint; see the module docstring."""

    def __init__(
        self,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        max_transactions: int = 100_000,
        retry_after: int = 5,
        rng: Random | None = None,
    ) -> None:
        self.timer_values = TimerValues(t1, t2, t4)
        self.max_transactions = max_transactions
        self.retry_after = retry_after
        self._rng = rng
        self._transactions: dict[str, _Transaction] = {}
        # Every way to find a transaction, as tagged tuples so kinds never collide:
        # ("s", branch, sent-by, method), ("l", <RFC 2543 fields>, method),
        # ("c", branch, method), ("a", call-id, cseq, from-tag, to-tag) for 2xx ACKs.
        self._index: dict[Hashable, str] = {}
        self._heap: list[tuple[float, int, str, Timer]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._transactions)

    # -- server side ---------------------------------------------------------------
    def receive_request(self, request: Request, peer: Peer, now: float) -> list[Event]:
        """A request from ``peer``: a retransmission, an ACK, a CANCEL or a new one."""
        key = _server_key(request)
        if key is None:
            if request.method == "ACK" or not request.headers.get("Via"):
                return []  # nothing to answer (an ACK), or nowhere to answer to
            return [self._stateless(request, peer, 400, "Bad Request (malformed CSeq)")]
        if request.method == "ACK":
            return self._receive_ack(request, peer, key, now)
        existing = self._lookup(key)
        if existing is not None:
            return self._step(existing, Input.REQUEST, now)
        invite = None
        if request.method == "CANCEL":
            invite = self._lookup((*key[:-1], "INVITE"))
        # A CANCEL for a live INVITE is let in beyond the cap: at most one per INVITE.
        if len(self._transactions) >= self.max_transactions and invite is None:
            retry = [("Retry-After", str(self.retry_after))]
            return [self._stateless(request, peer, 503, "Service Unavailable", retry)]
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        tx = self._create(kind, request, peer, key)
        if request.method == "CANCEL":
            return self._answer_cancel(tx, invite, now)
        if kind is Kind.NON_INVITE_SERVER:
            return [RequestReceived(request, peer, tx.id)]
        # 17.2.1: we answer 100 at once rather than wait 200 ms for the TU.
        timestamp = request.headers.get("Timestamp")
        extra = [("Timestamp", timestamp)] if timestamp else None
        tx.last_response = make_response(request, 100, "Trying", headers=extra)
        return [SendMessage(tx.last_response, peer), RequestReceived(request, peer, tx.id)]

    def send_response(self, transaction_id: str, response: Response, now: float) -> list[Event]:
        """The TU answers a server transaction; raises ``TransactionStateError`` if it can't."""
        tx = self._transactions.get(transaction_id)
        if tx is None or tx.kind not in _SERVER_KINDS:
            raise TransactionStateError(f"No server transaction {transaction_id!r}")
        status = response.status
        if not 100 <= status <= 699:
            raise TransactionStateError(f"Cannot send status {status}")
        if status < 200:
            step = Input.TU_1XX
        elif status < 300 and tx.kind is Kind.INVITE_SERVER:
            step = Input.TU_2XX
        else:
            step = Input.TU_FINAL
        return self._step(tx, step, now, response)

    # -- client side ---------------------------------------------------------------
    def send_request(self, request: Request, peer: Peer, now: float) -> tuple[str, list[Event]]:
        """Start a client transaction for ``request`` (top Via needs a fresh branch)."""
        if request.method == "ACK":
            raise TransactionStateError("ACK is not a transaction: send it directly")
        branch = request.branch or ""
        if not _has_cookie(branch):
            raise TransactionStateError(f"Client request needs a z9hG4bK branch: {branch!r}")
        key = ("c", branch, request.method)
        if key in self._index:
            raise TransactionStateError(f"A client transaction already uses {branch!r}")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        tx = self._create(kind, request, peer, key)
        events = self._run(tx, INITIAL[kind][1], now, None, peer)
        if request.method == "CANCEL":
            invite = self._lookup(("c", branch, "INVITE"))
            if invite is not None:
                events += self._step(invite, Input.CANCELLED, now)
        return tx.id, events

    def receive_response(self, response: Response, peer: Peer, now: float) -> list[Event]:
        """A response from ``peer``; one matching no client transaction is dropped."""
        try:
            _, method = response.cseq
        except SipSyntaxError:
            return []
        tx = self._lookup(("c", response.branch or "", method))
        status = response.status
        if tx is None or not 100 <= status <= 699:
            return []  # stray (RFC 6026 7.1) or nonsense
        if status < 200:
            step = Input.RESPONSE_1XX
        elif status < 300 and tx.kind is Kind.INVITE_CLIENT:
            step = Input.RESPONSE_2XX
        else:
            step = Input.RESPONSE_FINAL
        return self._step(tx, step, now, response, peer)

    # -- timers --------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction, or ``None``."""
        while self._heap and not self._valid(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``, in deadline order."""
        events: list[Event] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if not self._valid(entry):
                continue
            deadline, _, tx_id, timer = entry
            tx = self._transactions[tx_id]
            del tx.timers[timer]
            # Backoffs count from the deadline, not from a late wake-up, so the
            # retransmission schedule stays exact.
            events += self._step(tx, timer, deadline)
        return events

    # -- machinery -----------------------------------------------------------------
    def _create(self, kind: Kind, request: Request, peer: Peer, key: Hashable) -> _Transaction:
        tx_id = f"{next(self._ids)}/{request.method}/{request.branch or '-'}"
        tx = _Transaction(tx_id, kind, INITIAL[kind][0], request, peer, [key])
        self._transactions[tx_id] = tx
        self._index[key] = tx_id
        return tx

    def _lookup(self, key: Hashable) -> _Transaction | None:
        tx_id = self._index.get(key)
        return None if tx_id is None else self._transactions.get(tx_id)

    def _receive_ack(
        self, ack: Request, peer: Peer, key: tuple[Hashable, ...], now: float
    ) -> list[Event]:
        candidates = [key]
        if key[0] == "l":
            # 17.2.3: an RFC 2543 ACK matches the INVITE on everything but the To tag,
            # which must equal the tag of the response we sent (the INVITE had none,
            # or the same one for a re-INVITE).
            candidates = [(*key[:2], None, *key[3:]), key]
        for candidate in candidates:
            tx = self._lookup(candidate)
            if tx is None or tx.kind is not Kind.INVITE_SERVER:
                continue
            if key[0] == "l" and (tx.last_response is None or tx.last_response.to_tag != key[2]):
                continue
            return self._step(tx, Input.ACK, now, ack, peer)
        # An ACK for a 2xx is a transaction of its own (new branch): match the dialog.
        tx = self._lookup(_ack_key(ack, ack.to_tag))
        if tx is not None:
            return self._step(tx, Input.ACK, now, ack, peer)
        return [AckReceived(ack, peer)]

    def _answer_cancel(
        self, tx: _Transaction, invite: _Transaction | None, now: float
    ) -> list[Event]:
        cancel = tx.request
        if invite is None or invite.kind is not Kind.INVITE_SERVER:
            response = make_response(
                cancel, 481, "Call/Transaction Does Not Exist", to_tag=new_tag(self._rng)
            )
            return self._step(tx, Input.TU_FINAL, now, response)
        # 9.2: the 200's To tag should equal the one in the INVITE's responses.
        sent = invite.last_response.to_tag if invite.last_response else None
        ok = make_response(cancel, 200, "OK", to_tag=sent or new_tag(self._rng))
        events = self._step(tx, Input.TU_FINAL, now, ok)
        if invite.state is State.PROCEEDING:  # after a final the CANCEL has no effect
            events.append(CancelReceived(cancel, tx.peer, invite.id))
        return events

    def _step(
        self,
        tx: _Transaction,
        step: Step,
        now: float,
        message: Request | Response | None = None,
        peer: Peer | None = None,
    ) -> list[Event]:
        entry = TABLES[tx.kind].get((tx.state, step))
        if entry is None:
            if step in _TU_STEPS:
                raise TransactionStateError(
                    f"{step.value} is not allowed in state {tx.state.value} of {tx.id}"
                )
            return []
        next_state, actions = entry
        if next_state is not tx.state:
            tx.state = next_state
            alive = ALIVE[tx.kind].get(next_state, frozenset())
            for timer in [t for t in tx.timers if t not in alive]:
                del tx.timers[timer]
        events = self._run(tx, actions, now, message, peer)
        if tx.state is State.TERMINATED and tx.id in self._transactions:
            events += self._terminate(tx)
        return events

    def _run(
        self,
        tx: _Transaction,
        actions: tuple[Action, ...],
        now: float,
        message: Request | Response | None,
        peer: Peer | None,
    ) -> list[Event]:
        events: list[Event] = []
        fire_now: list[Timer] = []
        for action in actions:
            if isinstance(action, Arm):
                if self._arm(tx, action, now) == 0.0:
                    fire_now.append(action.timer)
            elif action is Do.SEND:
                assert isinstance(message, Response)
                tx.last_response = message
                events.append(SendMessage(message, tx.peer))
            elif action is Do.RESEND:
                resend = tx.request if tx.kind not in _SERVER_KINDS else tx.last_response
                assert resend is not None  # servers only resend once they have answered
                events.append(SendMessage(resend, tx.peer))
            elif action is Do.PASS_RESPONSE:
                assert isinstance(message, Response)
                events.append(ResponseReceived(message, tx.id))
            elif action is Do.PASS_ACK:
                assert isinstance(message, Request) and peer is not None
                tx.acked = True
                tx.timers.pop(Timer.RETRANSMIT_2XX, None)
                events.append(AckReceived(message, peer))
            elif action is Do.SEND_ACK:
                assert isinstance(message, Response)
                tx.ack = make_ack(tx.request, message)
                events.append(SendMessage(tx.ack, tx.peer))
            elif action is Do.RESEND_ACK and tx.ack is not None:
                events.append(SendMessage(tx.ack, tx.peer))
            elif action is Do.TIMED_OUT:
                events.append(TransactionTimedOut(tx.id, tx.request.method))
            elif action is Do.ACK_TIMED_OUT and not tx.acked:
                events.append(AckTimedOut(tx.id, tx.request))
            elif action is Do.AWAIT_ACK:
                assert isinstance(message, Response)
                ack_key = _ack_key(tx.request, message.to_tag)
                tx.keys.append(ack_key)
                self._index[ack_key] = tx.id
        # A zero-length absorb window (D, I, J, K on a reliable transport) ends the
        # transaction now; no transition arms two of them.
        for timer in fire_now:
            del tx.timers[timer]
            events += self._step(tx, timer, now)
        return events

    def _arm(self, tx: _Transaction, arm: Arm, now: float) -> float | None:
        values = self.timer_values
        if arm.how == "start":
            duration = values.first(arm.timer, reliable=tx.peer.reliable)
        elif arm.how == "t2":
            duration = values.t2
        else:
            duration = values.backoff(arm.timer, tx.intervals[arm.timer])
        if duration is None:
            return None
        tx.intervals[arm.timer] = duration
        entry = (now + duration, next(self._seq), tx.id, arm.timer)
        tx.timers[arm.timer] = (entry[0], entry[1])
        if duration > 0:
            heapq.heappush(self._heap, entry)
            if len(self._heap) > 1024 + 8 * len(self._transactions):
                self._compact()
        return duration

    def _valid(self, entry: tuple[float, int, str, Timer]) -> bool:
        tx = self._transactions.get(entry[2])
        return tx is not None and tx.timers.get(entry[3]) == (entry[0], entry[1])

    def _compact(self) -> None:
        # Cancelled timers stay in the heap until they surface; drop them in bulk
        # so that the heap stays proportional to the live transactions.
        self._heap = [entry for entry in self._heap if self._valid(entry)]
        heapq.heapify(self._heap)

    def _terminate(self, tx: _Transaction) -> list[Event]:
        del self._transactions[tx.id]
        tx.timers.clear()
        for key in tx.keys:
            if self._index.get(key) == tx.id:
                del self._index[key]
        return [TransactionTerminated(tx.id)]

    def _stateless(
        self,
        request: Request,
        peer: Peer,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> SendMessage:
        tag = new_tag(self._rng)
        return SendMessage(
            make_response(request, status, reason, to_tag=tag, headers=headers), peer
        )


def _has_cookie(branch: str) -> bool:
    # A bare "z9hG4bK" (RFC 4475 badbranch) identifies nothing: RFC 2543 rules apply.
    return branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


_SLASH = re.compile(r"\s*/\s*")


def _sent_by(via: str) -> str:
    """The sent-by of a Via value ("SIP / 2.0 / UDP  host : 5060 ;..." -> "host:5060")."""
    head = _SLASH.sub("/", via.split(";", 1)[0].strip())
    parts = head.split(None, 1)
    return "".join(parts[1].split()).lower() if len(parts) == 2 else ""


def _server_key(request: Request) -> tuple[Hashable, ...] | None:
    """The 17.2.3 matching key of a request (ACK keyed as its INVITE), or ``None``."""
    vias = request.headers.get_all("Via")
    try:
        number, _ = request.cseq
    except SipSyntaxError:
        return None
    if not vias:
        return None
    method = "INVITE" if request.method == "ACK" else request.method
    branch = header_param(vias[0], "branch") or ""
    if _has_cookie(branch):
        return ("s", branch, _sent_by(vias[0]), method)
    via = " ".join(vias[0].split())
    return (
        "l",
        request.uri,
        request.to_tag,
        request.from_tag,
        request.call_id,
        number,
        via,
        method,
    )


def _ack_key(request: Request, to_tag: str | None) -> Hashable:
    """The dialog-level key of an INVITE and the ACK for its 2xx (13.3.1.4, 17.2.3)."""
    return ("a", request.call_id, request.cseq[0], request.from_tag, to_tag)


__all__ = [
    "MAGIC_COOKIE",
    "TransactionLayer",
    "TransactionStateError",
    "make_cancel",
    "new_branch",
    "new_tag",
]
