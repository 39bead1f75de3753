"""The uploader: moves finished recordings from the data directory into the S3 bucket.

Theory of operation. The state lives in the recording row, so there is no queue to lose:

- *Pending*: while ``storage.backend`` is ``s3``, every recording that is ``ready``, in
  store ``local`` and ``stored_at`` set (the local file is complete and checksummed).
  ``next_upload_at`` NULL means never tried (due now); otherwise not before that time.
- *Claim* (one write transaction): the first due row gets ``next_upload_at = now +
  LEASE`` and ``upload_attempts + 1`` (``SKIP LOCKED`` on PostgreSQL), so another
  server process or ``callvault storage move`` leaves it alone, and a process that dies
  mid-upload only delays that recording by the lease.
- *Upload*, outside any transaction and off the event loop (boto3 blocks): ``put``
  returns only once the bucket confirmed size and SHA-256.
- *Switch* (one write transaction): ``store = "s3"``, ``stored_at = now``, if the row
  still describes the file that was sent (ready, local, same path and SHA-256: a remake
  or a deletion meanwhile wins). Only after that commit is the local copy deleted.
- *Failure*: ``upload_error`` and ``next_upload_at = now + backoff`` (30 s doubling up
  to an hour, shortened at random by up to a fifth), for ever until it works. The local
  copy stays and keeps playing; finalize goes on writing recordings locally. A round
  stops at its first failure, so an outage costs one failed attempt per interval.

Why finalize does not queue uploads: "pending" is defined by the row and the backend,
so nothing is needed at the moment a recording becomes ready, and recordings made while
the backend was ``local`` follow once an administrator switches to ``s3`` (the setting
says where recordings live; ``callvault storage move`` does the same at once, with a
progress bar). Finalize calls :func:`stored_locally` for a different reason: a remade
file is local again, whichever store held the one it replaces.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from callvault.config import ConfigError, Settings
from callvault.db import Database
from callvault.db.models import Recording
from callvault.runtime_settings import effective_settings
from callvault.store import BlobStore, LocalStore, StoreError, store_for

__all__ = [
    "FIRST_DELAY",
    "INTERVAL",
    "LEASE",
    "MAX_DELAY",
    "Claim",
    "UploadOutcome",
    "Uploader",
    "claim_upload",
    "pending_condition",
    "record_failure",
    "record_upload",
    "retry_delay",
    "stored_locally",
    "upload_counts",
    "upload_next",
]

log = logging.getLogger("callvault.store.uploader")

#: Seconds between the server's looks for pending uploads.
INTERVAL = 5.0
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
#: How far a claim pushes ``next_upload_at``: longer than one upload can take.
LEASE = timedelta(minutes=30)
MAX_ERROR_LENGTH = 500
_jitter = random.Random()


@dataclass(frozen=True, slots=True)
class Claim:
    """A recording taken for upload: what is needed without the database."""

    recording_id: int
    key: str
    sha256: str
    attempts: int


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    recording_id: int
    uploaded: bool
    error: str | None = None
    retry_at: datetime | None = None


def stored_locally(row: Recording, now: datetime) -> None:
    """Finalize has (re)written ``row``'s file in the data directory and is committing it:
    the local store holds it, confirmed (finalize hashed what it wrote). With the S3
    backend the uploader takes it from here."""
    row.store = "local"
    row.stored_at = now
    row.upload_attempts = 0
    row.next_upload_at = None
    row.upload_error = None


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed upload (1-based)."""
    doublings = min(max(attempts - 1, 0), 16)
    base = min(FIRST_DELAY * (1 << doublings), MAX_DELAY)
    # Jitter only shortens: the cap stays a cap, and many failed uploads spread out.
    return base * (1 - 0.2 * (rng or _jitter).random())


def pending_condition() -> ColumnElement[bool]:
    """Recordings whose file is complete in the local store (to upload with backend s3)."""
    return and_(
        Recording.state == "ready",
        Recording.store == "local",
        Recording.stored_at.is_not(None),
        Recording.path.is_not(None),
        Recording.sha256.is_not(None),
    )


def claim_upload(db: Session, now: datetime) -> Claim | None:
    """Take the first due pending recording for this process (see the module's text)."""
    row = db.scalars(
        select(Recording)
        .where(
            pending_condition(),
            or_(Recording.next_upload_at.is_(None), Recording.next_upload_at <= now),
        )
        # Never tried first, then the longest waiting.
        .order_by(Recording.next_upload_at.is_not(None), Recording.next_upload_at, Recording.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    row.next_upload_at = now + LEASE
    row.upload_attempts += 1
    assert row.path is not None and row.sha256 is not None  # pending_condition
    return Claim(row.id, row.path, row.sha256, row.upload_attempts)


def record_upload(db: Session, claim: Claim, now: datetime) -> bool:
    """The bucket confirmed the file: the row now says ``s3``. False when the row no
    longer describes the file that was sent (remade, deleted or moved meanwhile)."""
    row = db.get(Recording, claim.recording_id)
    if row is None or not _unchanged(row, claim):
        return False
    row.store = "s3"
    row.stored_at = now
    row.next_upload_at = None
    row.upload_error = None
    return True


def record_failure(
    db: Session, claim: Claim, error: str, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """Note a failed upload and when to try again (None: the row changed meanwhile)."""
    row = db.get(Recording, claim.recording_id)
    if row is None or not _unchanged(row, claim):
        return None
    text = " ".join(error.split())
    row.upload_error = text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
    row.next_upload_at = now + retry_delay(row.upload_attempts, rng)
    return row.next_upload_at


def upload_counts(db: Session) -> tuple[int, int]:
    """(pending, failing): recordings waiting for upload, and those whose last attempt
    failed. Counted whatever the backend; the caller knows whether it is s3."""
    pending, failing = db.execute(
        select(func.count(), func.count(Recording.upload_error)).where(pending_condition())
    ).one()
    return int(pending), int(failing)


def upload_next(
    database: Database,
    base: Settings,
    data_dir: Path,
    now: datetime,
    *,
    rng: random.Random | None = None,
) -> UploadOutcome | None:
    """Upload one due recording if the backend is s3; None when there was nothing to do.

    Blocking (database and network): the server runs it in a worker thread.
    """
    try:
        settings = database.read(lambda s: effective_settings(s, base))
    except ConfigError as exc:
        log.error("uploads wait: the settings do not agree: %s", exc)
        return None
    if settings["storage.backend"] != "s3":
        return None
    claim = database.write(lambda s: claim_upload(s, now))
    if claim is None:
        return None
    local = LocalStore(data_dir)
    try:
        bucket = store_for(settings, "s3")
        bucket.put(claim.key, local.path(claim.key), sha256=claim.sha256)
    except (StoreError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, StoreError) else str(exc)
        retry_at = database.write(lambda s: record_failure(s, claim, error, now, rng))
        log.warning(
            "upload of recording %s failed (attempt %s): %s; next try at %s",
            claim.recording_id,
            claim.attempts,
            error,
            retry_at,
        )
        return UploadOutcome(claim.recording_id, False, error, retry_at)
    if not database.write(lambda s: record_upload(s, claim, now)):
        _forget_stale_object(database, bucket, claim)
        return UploadOutcome(claim.recording_id, False, "the recording changed during its upload")
    try:
        local.delete(claim.key)
    except OSError as exc:  # stored safely all the same; `callvault verify` shows the copy
        log.warning("recording %s is in S3 but its local copy stays: %s", claim.recording_id, exc)
    log.info("recording %s uploaded to S3 (%s)", claim.recording_id, claim.key)
    return UploadOutcome(claim.recording_id, True)


class Uploader:
    """The server's periodic upload task and the numbers /metrics shows."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        data_dir: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.settings = settings
        self.data_dir = data_dir
        self.clock = clock
        self.pending = 0
        self.failing = 0

    def upload_next(self) -> UploadOutcome | None:
        return upload_next(self.database, self.settings, self.data_dir, self.clock())

    def refresh_counts(self) -> None:
        backend = self.database.read(
            lambda s: effective_settings(s, self.settings, check=False)["storage.backend"]
        )
        counts = self.database.read(upload_counts) if backend == "s3" else (0, 0)
        self.pending, self.failing = counts

    async def run(self) -> None:
        """Upload what is due, one recording per worker-thread call (so a shutdown can
        stop between two), until nothing is due or an upload fails; then count."""
        loop = asyncio.get_running_loop()
        while True:
            outcome = await loop.run_in_executor(None, self.upload_next)
            if outcome is None or not outcome.uploaded:
                break
        await loop.run_in_executor(None, self.refresh_counts)


def _unchanged(row: Recording, claim: Claim) -> bool:
    return (
        row.state == "ready"
        and row.store == "local"
        and row.path == claim.key
        and row.sha256 == claim.sha256
    )


def _forget_stale_object(database: Database, bucket: BlobStore, claim: Claim) -> None:
    """Remove the object just uploaded unless a recording kept in S3 refers to it: the
    recording was deleted, renamed or is being made again meanwhile (a same-named remake
    is uploaded again once it is ready)."""
    still_used = database.read(
        lambda s: s.scalar(
            select(func.count()).where(
                Recording.path == claim.key,
                Recording.store == "s3",
                Recording.state == "ready",
            )
        )
    )
    if still_used:
        return
    try:
        bucket.delete(claim.key)
    except StoreError as exc:
        log.warning("cannot remove the stale object %s: %s", claim.key, exc)
