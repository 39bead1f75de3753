"""SIP timers: the transaction state machines that arm them, and RFC 4028 session timers.

``TimerValues`` turns T1/T2/T4 into the duration of each lettered transaction timer
(RFC 3261 table 4, and the UAS core's 2xx retransmission of 13.3.1.4). The four
transaction state machines (RFC 3261 17, RFC 6026) are tables here, as data: which
step moves which state where, doing what and arming which timer;
``callvault.sip.transaction`` interprets them.

``negotiate_session_timer`` is the pure UAS side of RFC 4028 section 9: given an INVITE
(or UPDATE) it says whether to reject it with 422 and which Session-Expires/Require
headers go into the 2xx; ``SessionTimer`` turns the result into deadlines. Nothing here
reads a clock: every deadline is computed from a given time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from callvault.sip.errors import SipSyntaxError
from callvault.sip.message import Request, header_param

# RFC 4028 section 4: no session interval may be shorter than 90 seconds.
MIN_SE_FLOOR = 90


class Timer(enum.Enum):
    """Transaction timers by their RFC 3261 letter (``RETRANSMIT_2XX`` is 13.3.1.4's)."""

    A = "A"  # INVITE client: request retransmission (UDP)
    B = "B"  # INVITE client: transaction timeout
    D = "D"  # INVITE client: wait for final response retransmissions
    E = "E"  # non-INVITE client: request retransmission (UDP)
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: non-2xx final retransmission (UDP)
    H = "H"  # INVITE server: wait for ACK
    I = "I"  # INVITE server: absorb ACK retransmissions  # noqa: E741
    J = "J"  # non-INVITE server: absorb request retransmissions
    K = "K"  # non-INVITE client: absorb response retransmissions
    L = "L"  # INVITE server (RFC 6026): absorb INVITE retransmissions after a 2xx
    M = "M"  # INVITE client (RFC 6026): accept 2xx retransmissions from other forks
    RETRANSMIT_2XX = "2xx"  # UAS core: 2xx retransmission until the ACK (UDP)
    CANCEL = "cancel"  # INVITE client after CANCEL: give up waiting (RFC 3261 9.1)


# Timers that only retransmit: a reliable transport never arms them (RFC 3261 17).
_RETRANSMISSIONS = frozenset({Timer.A, Timer.E, Timer.G, Timer.RETRANSMIT_2XX})
# Timers that wait for retransmissions: zero over a reliable transport.
_ABSORB_WINDOWS = frozenset({Timer.D, Timer.I, Timer.J, Timer.K})


@dataclass(frozen=True, slots=True)
class TimerValues:
    """T1 (RTT estimate), T2 (retransmission cap) and T4 (network lifetime) in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def first(self, timer: Timer, *, reliable: bool) -> float | None:
        """The initial duration of ``timer``; ``None`` when it is not armed at all."""
        if timer in _RETRANSMISSIONS:
            return None if reliable else self.t1
        if timer in _ABSORB_WINDOWS and reliable:
            return 0.0
        if timer is Timer.D:
            return max(32.0, 64 * self.t1)  # table 4: "> 32 s for UDP"
        if timer in (Timer.I, Timer.K):
            return self.t4
        return 64 * self.t1  # B, F, H, J, L, M, CANCEL

    def backoff(self, timer: Timer, previous: float) -> float:
        """The next retransmission interval: doubling, capped at T2 except for Timer A."""
        if timer is Timer.A:
            return previous * 2
        return min(previous * 2, self.t2)


# -- the transaction state machines -------------------------------------------------


class Kind(enum.Enum):
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    REQUEST = "request retransmission"
    ACK = "ACK"
    CANCELLED = "CANCEL sent"
    TU_1XX = "TU sends 1xx"
    TU_2XX = "TU sends 2xx"
    TU_FINAL = "TU sends final"  # 300-699; any 200-699 for non-INVITE
    RESPONSE_1XX = "1xx received"
    RESPONSE_2XX = "2xx received"
    RESPONSE_FINAL = "final received"  # 300-699; any 200-699 for non-INVITE


class Do(enum.Enum):
    SEND = "send the TU's response and remember it"
    RESEND = "retransmit: the last response (server) or the request (client)"
    PASS_RESPONSE = "ResponseReceived"
    PASS_ACK = "AckReceived, stop 2xx retransmission"
    SEND_ACK = "build and send the ACK for a non-2xx final (17.1.1.3)"
    RESEND_ACK = "resend that ACK"
    TIMED_OUT = "TransactionTimedOut"
    ACK_TIMED_OUT = "AckTimedOut unless the ACK came"
    AWAIT_ACK = "index the dialog key under which the ACK for the 2xx will come"


class Arm(NamedTuple):
    timer: Timer
    how: str = "start"  # "start" | "backoff" (doubling) | "t2"


Step = Input | Timer
Action = Do | Arm
Table = dict[tuple[State, Step], tuple[State, tuple[Action, ...]]]

_P, _C, _A = State.PROCEEDING, State.COMPLETED, State.ACCEPTED
_T, _X, _K = State.TRYING, State.TERMINATED, State.CALLING

# Theory of operation. One table per transaction kind maps (state, step) to (next
# state, actions); a step is a remote message, a TU send, or a timer firing. A timer
# lives only in the states listed for it in ALIVE: entering another state cancels it,
# which is how "stop retransmitting once a provisional arrives" and the like happen.
# A (state, step) missing from a table is absorbed when the step is remote, and a
# TransactionStateError when the TU did it. Durations come from TimerValues: the
# retransmission timers (A, E, G, 2xx) are never armed on reliable transports, and the
# absorb windows (D, I, J, K) are zero there, so those transactions end at once.
#
# INVITE server (17.2.1 + RFC 6026): Proceeding resends the last provisional on a
# retransmitted INVITE; a 300-699 moves to Completed (Timer G resends it, Timer H
# gives up, an ACK moves to Confirmed which absorbs ACKs for Timer I); a 2xx moves to
# Accepted, which absorbs INVITEs for Timer L and passes every ACK up, while the UAS
# core's 2xx retransmission runs until the first ACK. Timer L without an ACK is
# AckTimedOut: the dialog must be ended with BYE.
INVITE_SERVER: Table = {
    (_P, Input.REQUEST): (_P, (Do.RESEND,)),
    (_P, Input.ACK): (_P, ()),
    (_P, Input.TU_1XX): (_P, (Do.SEND,)),
    (_P, Input.TU_2XX): (
        _A,
        (Do.SEND, Do.AWAIT_ACK, Arm(Timer.L), Arm(Timer.RETRANSMIT_2XX)),
    ),
    (_P, Input.TU_FINAL): (_C, (Do.SEND, Arm(Timer.G), Arm(Timer.H))),
    (_C, Input.REQUEST): (_C, (Do.RESEND,)),
    (_C, Input.ACK): (State.CONFIRMED, (Arm(Timer.I),)),
    (_C, Timer.G): (_C, (Do.RESEND, Arm(Timer.G, "backoff"))),
    (_C, Timer.H): (_X, (Do.TIMED_OUT,)),
    (State.CONFIRMED, Input.REQUEST): (State.CONFIRMED, ()),
    (State.CONFIRMED, Input.ACK): (State.CONFIRMED, ()),
    (State.CONFIRMED, Timer.I): (_X, ()),
    (_A, Input.REQUEST): (_A, ()),
    (_A, Input.ACK): (_A, (Do.PASS_ACK,)),
    (_A, Input.TU_2XX): (_A, (Do.SEND,)),
    (_A, Timer.RETRANSMIT_2XX): (_A, (Do.RESEND, Arm(Timer.RETRANSMIT_2XX, "backoff"))),
    (_A, Timer.L): (_X, (Do.ACK_TIMED_OUT,)),
}

# non-INVITE server (17.2.2): Trying absorbs retransmissions (nothing to resend yet),
# Proceeding and Completed resend the last response; Timer J ends Completed.
NON_INVITE_SERVER: Table = {
    (_T, Input.REQUEST): (_T, ()),
    (_T, Input.TU_1XX): (_P, (Do.SEND,)),
    (_T, Input.TU_FINAL): (_C, (Do.SEND, Arm(Timer.J))),
    (_P, Input.REQUEST): (_P, (Do.RESEND,)),
    (_P, Input.TU_1XX): (_P, (Do.SEND,)),
    (_P, Input.TU_FINAL): (_C, (Do.SEND, Arm(Timer.J))),
    (_C, Input.REQUEST): (_C, (Do.RESEND,)),
    (_C, Timer.J): (_X, ()),
}

# INVITE client (17.1.1 + RFC 6026): Calling retransmits on Timer A until Timer B;
# a provisional stops that; a 300-699 is ACKed by the transaction (Completed absorbs
# its retransmissions, re-ACKing, for Timer D); a 2xx goes to Accepted, which passes
# further 2xx (retransmissions, other forks) to the TU for Timer M: the TU ACKs them.
# After the TU sends a CANCEL, the CANCEL timer (9.1) bounds the wait for a final (in
# Calling it can only fire after Timer B, so only Proceeding handles it).
INVITE_CLIENT: Table = {
    (_K, Timer.A): (_K, (Do.RESEND, Arm(Timer.A, "backoff"))),
    (_K, Timer.B): (_X, (Do.TIMED_OUT,)),
    (_K, Input.CANCELLED): (_K, (Arm(Timer.CANCEL),)),
    (_K, Input.RESPONSE_1XX): (_P, (Do.PASS_RESPONSE,)),
    (_K, Input.RESPONSE_2XX): (_A, (Do.PASS_RESPONSE, Arm(Timer.M))),
    (_K, Input.RESPONSE_FINAL): (_C, (Do.PASS_RESPONSE, Do.SEND_ACK, Arm(Timer.D))),
    (_P, Input.CANCELLED): (_P, (Arm(Timer.CANCEL),)),
    (_P, Timer.CANCEL): (_X, (Do.TIMED_OUT,)),
    (_P, Input.RESPONSE_1XX): (_P, (Do.PASS_RESPONSE,)),
    (_P, Input.RESPONSE_2XX): (_A, (Do.PASS_RESPONSE, Arm(Timer.M))),
    (_P, Input.RESPONSE_FINAL): (_C, (Do.PASS_RESPONSE, Do.SEND_ACK, Arm(Timer.D))),
    (_C, Input.RESPONSE_FINAL): (_C, (Do.RESEND_ACK,)),
    (_C, Timer.D): (_X, ()),
    (_A, Input.RESPONSE_2XX): (_A, (Do.PASS_RESPONSE,)),
    (_A, Timer.M): (_X, ()),
}

# non-INVITE client (17.1.2): Timer E retransmits (doubling to T2 in Trying, every T2
# in Proceeding) until a final or Timer F; Completed absorbs responses for Timer K.
NON_INVITE_CLIENT: Table = {
    (_T, Timer.E): (_T, (Do.RESEND, Arm(Timer.E, "backoff"))),
    (_T, Timer.F): (_X, (Do.TIMED_OUT,)),
    (_T, Input.RESPONSE_1XX): (_P, (Do.PASS_RESPONSE,)),
    (_T, Input.RESPONSE_FINAL): (_C, (Do.PASS_RESPONSE, Arm(Timer.K))),
    (_P, Timer.E): (_P, (Do.RESEND, Arm(Timer.E, "t2"))),
    (_P, Timer.F): (_X, (Do.TIMED_OUT,)),
    (_P, Input.RESPONSE_1XX): (_P, (Do.PASS_RESPONSE,)),
    (_P, Input.RESPONSE_FINAL): (_C, (Do.PASS_RESPONSE, Arm(Timer.K))),
    (_C, Timer.K): (_X, ()),
}

TABLES: dict[Kind, Table] = {
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
}

_RETRANSMIT_2XX = {Timer.L, Timer.RETRANSMIT_2XX}
ALIVE: dict[Kind, dict[State, frozenset[Timer]]] = {
    Kind.INVITE_SERVER: {
        _C: frozenset({Timer.G, Timer.H}),
        State.CONFIRMED: frozenset({Timer.I}),
        _A: frozenset(_RETRANSMIT_2XX),
    },
    Kind.NON_INVITE_SERVER: {_C: frozenset({Timer.J})},
    Kind.INVITE_CLIENT: {
        _K: frozenset({Timer.A, Timer.B, Timer.CANCEL}),
        _P: frozenset({Timer.CANCEL}),
        _C: frozenset({Timer.D}),
        _A: frozenset({Timer.M}),
    },
    Kind.NON_INVITE_CLIENT: {
        _T: frozenset({Timer.E, Timer.F}),
        _P: frozenset({Timer.E, Timer.F}),
        _C: frozenset({Timer.K}),
    },
}

# Where each kind starts, and what it does on creation (client: first transmission).
INITIAL: dict[Kind, tuple[State, tuple[Action, ...]]] = {
    Kind.INVITE_SERVER: (_P, ()),
    Kind.NON_INVITE_SERVER: (_T, ()),
    Kind.INVITE_CLIENT: (_K, (Do.RESEND, Arm(Timer.A), Arm(Timer.B))),
    Kind.NON_INVITE_CLIENT: (_T, (Do.RESEND, Arm(Timer.E), Arm(Timer.F))),
}


# -- session timers (RFC 4028) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A negotiated session interval (RFC 4028) seen from ``local_role`` ("uas"/"uac")."""

    interval: int
    refresher: str
    local_role: str = "uas"

    @property
    def local_refresher(self) -> bool:
        """True when this side must send the refreshing re-INVITE or UPDATE."""
        return self.refresher == self.local_role

    def refresh_at(self, refreshed_at: float) -> float | None:
        """When we must refresh (half the interval, RFC 4028 10); ``None`` if not ours."""
        return refreshed_at + self.interval / 2 if self.local_refresher else None

    def expires_at(self, refreshed_at: float) -> float:
        """When to give up on a session without refresh and send BYE (RFC 4028 10).

        That is the interval minus min(32 s, interval/3), so that the BYE goes out
        before the other side and the proxies consider the session expired.
        """
        return refreshed_at + self.interval - min(32.0, self.interval / 3)


@dataclass(frozen=True, slots=True)
class SessionTimerDecision:
    """The UAS's answer to a request's session-timer headers.

    ``status`` is 422 (interval too small) or 400 (unreadable header) to reject the
    request with ``reason`` and ``headers``; ``None`` to accept it, adding ``headers``
    (Session-Expires and maybe Require: timer) to the 2xx. ``interval`` is ``None`` when
    no session timer runs for this dialog.
    """

    status: int | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    interval: int | None = None
    refresher: str | None = None

    @property
    def timer(self) -> SessionTimer | None:
        if self.interval is None or self.refresher is None:
            return None
        return SessionTimer(self.interval, self.refresher)


def _delta_seconds(value: str, header: str) -> int:
    text = value.split(";", 1)[0].strip()
    if not text.isdigit() or len(text) > 10:
        raise SipSyntaxError(f"Bad {header}: {value!r}")
    return int(text)


def _option_tags(request: Request, header: str) -> set[str]:
    return {tag.strip().lower() for tag in request.headers.get_all(header)}


def negotiate_session_timer(
    request: Request, *, min_se: int = MIN_SE_FLOOR, default: int = 1800
) -> SessionTimerDecision:
    """Apply RFC 4028 section 9 (UAS behaviour) to an INVITE or UPDATE.

    ``min_se`` is the shortest interval we accept; ``default`` the interval we prefer.
    A longer Session-Expires is reduced to ``default`` (allowed: a UAS may reduce it,
    never below the request's Min-SE), a shorter one is kept (a UAS must not increase
    it). The refresher follows RFC 4028 table 2, preferring the UAC when it is free to
    choose, so that the recorder answers refreshes rather than sends them.
    """
    if min_se < MIN_SE_FLOOR:
        raise ValueError(f"min_se must be at least {MIN_SE_FLOOR} seconds, got {min_se}")
    uac_supports = "timer" in _option_tags(request, "Supported") | _option_tags(request, "Require")
    se_value = request.headers.get("Session-Expires")
    min_se_value = request.headers.get("Min-SE")
    try:
        requested = None if se_value is None else _delta_seconds(se_value, "Session-Expires")
        floor = MIN_SE_FLOOR if min_se_value is None else _delta_seconds(min_se_value, "Min-SE")
    except SipSyntaxError as exc:
        return SessionTimerDecision(status=400, reason=exc.reason)
    floor = max(floor, MIN_SE_FLOOR)
    if requested is None:
        if not uac_supports:
            return SessionTimerDecision()  # neither asked for nor able to refresh
        interval = max(default, floor, min_se)
        refresher = "uac"
    else:
        if requested < min_se and uac_supports:
            return SessionTimerDecision(
                status=422,
                reason="Session Interval Too Small",
                headers=(("Min-SE", str(min_se)),),
            )
        # Without "timer" support the UAC cannot understand 422 (a proxy inserted the
        # header), so a short interval is accepted as it is.
        interval = requested if requested <= default else min(requested, max(default, floor))
        asked = (header_param(se_value or "", "refresher") or "").lower()
        refresher = (asked if asked in ("uac", "uas") else "uac") if uac_supports else "uas"
    headers = [("Session-Expires", f"{interval};refresher={refresher}")]
    if refresher == "uac":
        headers.append(("Require", "timer"))
    return SessionTimerDecision(
        status=None, headers=tuple(headers), interval=interval, refresher=refresher
    )


__all__ = [
    "ALIVE",
    "INITIAL",
    "MIN_SE_FLOOR",
    "TABLES",
    "Action",
    "Arm",
    "Do",
    "Input",
    "Kind",
    "SessionTimer",
    "SessionTimerDecision",
    "State",
    "Step",
    "Timer",
    "TimerValues",
    "negotiate_session_timer",
]
