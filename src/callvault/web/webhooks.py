"""The webhook dispatcher: delivers the outbox that :mod:`callvault.recording.events` fills.

``emit`` writes one ``WebhookDelivery`` row per subscribed webhook in the transaction
that makes the event true; this module sends the due rows (state ``pending``,
``next_attempt_at`` reached) and records how it went. It knows nothing about calls or
recordings: it moves signed JSON bodies and keeps the delivery log.

What a receiver gets (one POST per delivery)::

    POST <webhook url>
    Content-Type: application/json
    User-Agent: callvault-webhooks/<version>
    X-Callvault-Event: recording.ready
    X-Callvault-Delivery: 3f2c...            (the event id: the same on every retry,
                                              use it to ignore duplicates)
    X-Callvault-Timestamp: 1700000000        (unix seconds of this attempt)
    X-Callvault-Signature: sha256=<hex>      (HMAC-SHA256, see below)

    {"id": "3f2c...", "event": "recording.ready", "occurred_at": "2023-11-14T22:13:20Z",
     "data": {"recording": {...}}}

The signature is the hex HMAC-SHA256, keyed with the webhook's secret (UTF-8), of the
timestamp header, a dot, and the raw request body: ``"<timestamp>.<body>"``. Verify it
on the raw bytes before parsing the JSON, and refuse old timestamps (replays)::

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
        if abs(time.time() - int(timestamp)) > 300:
            return False  # older than five minutes: a replay
        mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)

Retries: any 2xx answer delivers. Anything else (another status, redirects included;
no answer within 10 s; a connection error) is retried after 30 s, then 1, 2, 4, ...
minutes, at most an hour apart, each delay shortened at random by up to a fifth so
that many failed deliveries do not come back at the same instant, until 24 hours after
the delivery was queued (the last attempt is made at that point); then the delivery
is ``failed``. Deliveries of an inactive webhook wait (they are not sent) until it is
active again. The ``ping`` event (``queue_ping``) tests a webhook from the UI or API.

Several server processes may run the dispatcher against one database: a run claims
its rows (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer
serialises the claim) by moving their ``next_attempt_at`` a lease ahead, then sends
outside any transaction, so a process that dies mid-delivery only delays those rows.
Standard proxy variables (``HTTPS_PROXY``, ``NO_PROXY``) are honoured.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault import __version__
from callvault.db import Database
from callvault.db.accounts import Webhook, WebhookDelivery
from callvault.db.base import new_uid

__all__ = [
    "BATCH_SIZE",
    "LEASE",
    "MAX_DELAY",
    "MAX_ERROR_LENGTH",
    "PING",
    "RETRY_WINDOW",
    "TIMEOUT",
    "WORKERS",
    "Attempt",
    "Outcome",
    "claim_due",
    "deliver_batch",
    "deliver_due",
    "outbox_counts",
    "queue_ping",
    "record_outcome",
    "redeliver",
    "retry_delay",
    "send",
    "sign",
]

log = logging.getLogger("callvault.webhooks")

PING = "ping"
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
RETRY_WINDOW = timedelta(hours=24)
TIMEOUT = 10.0  # seconds a receiver has to answer
WORKERS = 4  # deliveries in flight at once, per process
BATCH_SIZE = 32  # deliveries claimed per run
# How far a claim pushes next_attempt_at: longer than a whole batch can take
# (BATCH_SIZE / WORKERS rounds of TIMEOUT), so no other process sends a claimed row.
LEASE = timedelta(minutes=5)
MAX_ERROR_LENGTH = 500
_RESPONSE_SNIPPET = 200  # bytes of a refusing receiver's answer kept in last_error
_jitter = random.Random()


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Callvault-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1-based)."""
    doublings = min(max(attempts - 1, 0), 16)  # past the cap anyway; keeps timedelta small
    base = min(FIRST_DELAY * (1 << doublings), MAX_DELAY)
    # Jitter only shortens: the cap stays a cap, and retries spread out.
    return base * (1 - 0.2 * (rng or _jitter).random())


@dataclass(frozen=True, slots=True)
class Attempt:
    """A claimed delivery, everything needed to send it without the database."""

    delivery_id: int
    url: str
    secret: str
    event: str
    event_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None  # the receiver's HTTP status, None when there was no answer
    error: str | None  # why it did not count as delivered

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def claim_due(db: Session, now: datetime, limit: int = BATCH_SIZE) -> list[Attempt]:
    """Take up to ``limit`` due deliveries of active webhooks for this process."""
    rows = db.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.state == "pending",
            WebhookDelivery.next_attempt_at <= now,
            Webhook.active.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        # PostgreSQL: rows another process is claiming are skipped, not waited for.
        # SQLite ignores this; its single writer already serialises the claims.
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).all()
    claimed = []
    for delivery, hook in rows:
        delivery.next_attempt_at = now + LEASE
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        claimed.append(
            Attempt(
                delivery_id=delivery.id,
                url=hook.url,
                secret=hook.secret,
                event=delivery.event,
                event_id=delivery.event_id,
                body=body.encode(),
            )
        )
    return claimed


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is an answer other than 2xx: retried, never followed (a POST must not
    # turn into a GET somewhere else, and the signed body must go only where configured).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _refusal(exc: urllib.error.HTTPError) -> str:
    """``HTTP <status> <reason>: <the start of the answer>`` for the delivery log."""
    try:
        snippet = exc.read(_RESPONSE_SNIPPET).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        snippet = ""  # the answer's body is a courtesy; its status is what counts
    finally:
        exc.close()
    head = f"HTTP {exc.code} {exc.reason}"
    return _truncate(f"{head}: {snippet}" if snippet.strip() else head)


def send(
    attempt: Attempt,
    timestamp: int,
    *,
    timeout: float = TIMEOUT,
    opener: urllib.request.OpenerDirector | None = None,
) -> Outcome:
    """POST one delivery; never raises (a failure is an ``Outcome`` with an error)."""
    try:
        request = urllib.request.Request(
            attempt.url,
            data=attempt.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"callvault-webhooks/{__version__}",
                "X-Callvault-Event": attempt.event,
                "X-Callvault-Delivery": attempt.event_id,
                "X-Callvault-Timestamp": str(timestamp),
                "X-Callvault-Signature": sign(attempt.secret, timestamp, attempt.body),
            },
        )
        with (opener or _opener()).open(request, timeout=timeout) as response:
            status: int = response.status
            response.read(_RESPONSE_SNIPPET)
    except urllib.error.HTTPError as exc:
        return Outcome(exc.code, _refusal(exc))
    except TimeoutError:
        return Outcome(None, f"no answer within {timeout:g} s")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Outcome(None, f"no answer within {timeout:g} s")
        return Outcome(None, _truncate(f"connection error: {reason}"))
    except (http.client.HTTPException, OSError, ValueError) as exc:
        return Outcome(None, _truncate(f"{type(exc).__name__}: {exc}"))
    if 200 <= status < 300:
        return Outcome(status, None)
    # urllib raises HTTPError for every other status; kept in case a handler does not.
    return Outcome(status, f"HTTP {status}")


def record_outcome(
    db: Session,
    delivery_id: int,
    outcome: Outcome,
    now: datetime,
    rng: random.Random | None = None,
) -> str | None:
    """Write one attempt to the delivery log; returns the delivery's state (None: gone)."""
    delivery = db.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.state != "pending":
        return None if delivery is None else delivery.state  # deleted or settled meanwhile
    delivery.attempts += 1
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error
    if outcome.delivered:
        delivery.state = "delivered"
        delivery.delivered_at = now
        return delivery.state
    deadline = delivery.created_at + RETRY_WINDOW
    if now >= deadline:
        delivery.state = "failed"
        return delivery.state
    # The last attempt is made at the deadline itself, not a backoff step before it.
    delivery.next_attempt_at = min(now + retry_delay(delivery.attempts, rng), deadline)
    return delivery.state


def deliver_batch(
    database: Database,
    now: Callable[[], datetime],
    *,
    limit: int = BATCH_SIZE,
    workers: int = WORKERS,
    timeout: float = TIMEOUT,
    rng: random.Random | None = None,
) -> int:
    """Claim due deliveries, send them ``workers`` at a time; returns how many delivered.

    Blocking (database and HTTP): the synchronous core of :func:`deliver_due`.
    """
    claimed = database.write(lambda db: claim_due(db, now(), limit))
    if not claimed:
        return 0
    opener = _opener()

    def one(attempt: Attempt) -> bool:
        outcome = send(attempt, int(now().timestamp()), timeout=timeout, opener=opener)
        at = now()
        state = database.write(lambda db: record_outcome(db, attempt.delivery_id, outcome, at, rng))
        if not outcome.delivered:
            # The host only: webhook URLs often carry a token in their path or query.
            log.info(
                "webhook delivery %s (%s to %s) not delivered: %s; now %s",
                attempt.delivery_id,
                attempt.event,
                urlsplit(attempt.url).hostname,
                outcome.error,
                state,
            )
        return outcome.delivered

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
        return sum(pool.map(one, claimed))


async def deliver_due(database: Database, now: Callable[[], datetime]) -> int:
    """Deliver what is due without blocking the event loop; returns how many delivered."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, partial(deliver_batch, database, now))


def outbox_counts(db: Session) -> dict[str, int]:
    """How many deliveries are ``pending`` and ``failed`` (for /metrics)."""
    rows = db.execute(
        select(WebhookDelivery.state, func.count())
        .where(WebhookDelivery.state.in_(("pending", "failed")))
        .group_by(WebhookDelivery.state)
    ).all()
    counts = {"pending": 0, "failed": 0}
    counts.update({state: count for state, count in rows})
    return counts


def queue_ping(db: Session, hook: Webhook, now: datetime) -> WebhookDelivery:
    """Queue a ``ping`` for ``hook`` (a test from the UI or API), due at once."""
    event_id = new_uid()
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        event=PING,
        event_id=event_id,
        payload={
            "id": event_id,
            "event": PING,
            "occurred_at": _iso(now),
            "data": {"webhook": {"id": hook.id, "url": hook.url, "events": list(hook.events)}},
        },
        next_attempt_at=now,
        created_at=now,
    )
    db.add(delivery)
    db.flush()
    return delivery


def redeliver(db: Session, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Send ``delivery`` again now (an administrator's retry).

    A pending delivery is just made due. A settled one (delivered or failed) stays in
    the log as it was and a new delivery of the same event (same event id, so the
    receiver can tell it is a duplicate) is queued with a fresh 24-hour window.
    """
    if delivery.state == "pending":
        delivery.next_attempt_at = now
        return delivery
    again = WebhookDelivery(
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        event_id=delivery.event_id,
        payload=delivery.payload,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(again)
    db.flush()
    return again
