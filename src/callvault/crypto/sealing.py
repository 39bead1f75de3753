"""Encrypting finished recordings and raw captures to the active key (T8-T10).

The finalize job asks :func:`encryption_target` in its claim (``encryption.enabled``
and the active key, as in force when the job starts), writes and analyses the file as
usual (peaks and talk analysis are not audio and stay in the database in clear), then
:func:`seal_file` encrypts it next to itself as ``<name>.<ext>.gpg``, fsyncs the
ciphertext, and removes the plaintext at once. The row then describes the stored bytes
(path, size and SHA-256 of the ciphertext, ``encrypted``, ``key_fingerprint``), keeps
the audio's own name in ``file_name``, and keeps the plaintext's size and SHA-256 in
``analysis["plaintext"]`` (the player's byte ranges and ETag are those of the audio).

Raw captures (``encryption.captures``: ``encrypt``, ``remove`` or ``keep``) are dealt
with by :func:`settle_captures` once nothing needs them any more: every segment of the
call has ended and all its recordings are ready, and the stitched recording the policy
asks for is ready too. A capture encrypted or removed cannot be made into a recording
again (``recordings remake`` says so).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callvault.config import Settings
from callvault.crypto.keys import active_key
from callvault.crypto.openpgp import encrypt_file
from callvault.db import Database
from callvault.db.models import Call, Recording, Segment
from callvault.media.encode import EncodedFile
from callvault.recording.naming import unique_name
from callvault.runtime_settings import effective_settings
from callvault.store.local import file_sha256

__all__ = [
    "SUFFIX",
    "EncryptionTarget",
    "EncryptionUnavailable",
    "SealedFile",
    "capture_problem",
    "encryption_target",
    "mark_encryption",
    "seal_file",
    "sealed_name",
    "settle_captures",
    "stored_path",
]

log = logging.getLogger(__name__)

#: Appended to an encrypted file's name (binary OpenPGP, what ``gpg --decrypt`` reads).
SUFFIX = ".gpg"
_NO_MEDIA = ("active", "metadata_only", "rejected")


class EncryptionUnavailable(ValueError):
    """``encryption.enabled`` is true but there is no key to encrypt to."""


@dataclass(frozen=True, slots=True)
class EncryptionTarget:
    fingerprint: str
    public_key: str


@dataclass(frozen=True, slots=True)
class SealedFile:
    path: Path
    size_bytes: int
    sha256: str
    fingerprint: str


def encryption_target(db: Session, settings: Settings) -> EncryptionTarget | None:
    """The key new files are encrypted to, or None when encryption is off."""
    if not settings["encryption.enabled"]:
        return None
    key = active_key(db)
    if key is None:
        raise EncryptionUnavailable(
            "encryption.enabled is true but no encryption key is set "
            "(callvault keys set --public FILE); nothing was written unencrypted"
        )
    return EncryptionTarget(key.fingerprint, key.public_key)


def stored_path(relative: str, sealed: bool) -> str:
    return relative + SUFFIX if sealed else relative


def sealed_name(
    db: Session, row: Recording, relative: str, file_name: str, data_dir: Path
) -> tuple[str, str]:
    """``(relative, file_name)`` whose ciphertext name (``relative`` + ``.gpg``) no other
    recording uses: the name template only checked the plaintext name."""
    directory = relative.rsplit("/", 1)[0] if "/" in relative else ""

    def taken(candidate: str) -> bool:
        plain = f"{directory}/{candidate}" if directory else candidate
        if row.path in (plain, plain + SUFFIX):
            return False
        if (data_dir / plain).exists() or (data_dir / (plain + SUFFIX)).exists():
            return True
        clash = db.scalar(
            select(Recording.id).where(
                Recording.path.in_((plain, plain + SUFFIX)), Recording.id != row.id
            )
        )
        return clash is not None

    if not taken(file_name):
        return relative, file_name
    base, _, extension = file_name.rpartition(".")
    name = unique_name(base or file_name, extension if base else "", taken)
    return (f"{directory}/{name}" if directory else name), name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_file(
    plain: Path, target: EncryptionTarget, sealed: Path | None = None, *, keep_on_failure: bool
) -> SealedFile:
    """Encrypt ``plain`` into ``sealed`` (default ``plain.gpg``; fsynced, renamed into
    place), then remove ``plain``.

    On failure ``plain`` is removed when ``keep_on_failure`` is false (a recording's
    plaintext: with encryption on no audio is left behind unencrypted, and the job runs
    again from the capture) and kept when it is true (a raw capture: nothing could make
    it again; the next run tries once more). The ciphertext is first written under a
    name of its own, so two jobs never write into the same file.
    """
    sealed = sealed or plain.with_name(plain.name + SUFFIX)
    partial = sealed.with_name(f".{sealed.name}.{secrets.token_hex(6)}.partial")
    try:
        encrypt_file(plain, partial, target.public_key, target.fingerprint)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(sealed)
        _fsync_dir(sealed.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        if not keep_on_failure:
            plain.unlink(missing_ok=True)
        raise
    plain.unlink()
    return SealedFile(sealed, sealed.stat().st_size, file_sha256(sealed), target.fingerprint)


def mark_encryption(row: Recording, sealed: SealedFile | None, plain: EncodedFile) -> None:
    """After ``apply_artifact``: describe the ciphertext (or say the file is plain)."""
    if sealed is None:
        row.encrypted = False
        row.key_fingerprint = None
        return
    row.encrypted = True
    row.key_fingerprint = sealed.fingerprint
    row.path = stored_path(row.path or "", True)
    row.size_bytes = sealed.size_bytes
    row.sha256 = sealed.sha256
    row.analysis = {
        **(row.analysis or {}),
        "plaintext": {"size_bytes": plain.size_bytes, "sha256": plain.sha256},
    }


def capture_problem(segment: Segment) -> str | None:
    """Why a segment's capture cannot be read again (encrypted or removed)."""
    if segment.capture_state == "plain":
        return None
    return (
        f"the capture of segment {segment.id} was {segment.capture_state} "
        "(encryption.captures) once its recordings were made: it cannot be made again"
    )


# -- raw captures ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CaptureWork:
    mode: str  # "encrypt" or "remove"
    target: EncryptionTarget | None
    captures: tuple[tuple[int, str], ...]  # (segment id, capture path)


def _stitch_done(call: Call, media: list[Segment]) -> bool:
    stitched = [r for r in call.recordings if r.kind == "call" and r.state == "ready"]
    ids = [s.id for s in media]
    return any((r.analysis or {}).get("segment_ids") == ids for r in stitched)


def _due(db: Session, call_id: int, base: Settings) -> _CaptureWork | None:
    settings = effective_settings(db, base, check=False)
    mode = str(settings["encryption.captures"])
    if not settings["encryption.enabled"] or mode == "keep":
        return None
    call = db.scalars(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.recordings),
            selectinload(Call.segments).selectinload(Segment.recordings),
        )
    ).one_or_none()
    if call is None or any(s.state == "active" for s in call.segments):
        return None
    media = sorted(
        (s for s in call.segments if s.state not in _NO_MEDIA and s.capture_path),
        key=lambda s: s.id,
    )
    for segment in media:
        own = [r for r in segment.recordings if r.kind != "call"]
        if not own or any(r.state != "ready" for r in own):
            return None  # a recording still to make (or to remake) needs the capture
    stitched = settings["recording.stitch"] == "transfers" and len(media) >= 2
    # Wait for the stitched recording only while it can still be made: once a capture
    # was settled, or the stitch failed, a segment that came later must not stay plain.
    can_stitch = all(s.capture_state == "plain" for s in media) and not any(
        r.kind == "call" and r.state == "failed" for r in call.recordings
    )
    if stitched and can_stitch and not _stitch_done(call, media):
        return None
    plain = tuple((s.id, s.capture_path or "") for s in media if s.capture_state == "plain")
    if not plain:
        return None
    target = encryption_target(db, settings) if mode == "encrypt" else None
    return _CaptureWork(mode, target, plain)


def _settle_one(data_dir: Path, work: _CaptureWork, relative: str) -> tuple[str, str] | None:
    """Encrypt or remove one capture; ``(state, path)`` to record, None when another
    job is doing it now (it holds the capture's lock)."""
    plain = data_dir / relative
    sealed_relative = relative + SUFFIX
    try:
        handle = plain.open("rb")
    except FileNotFoundError:
        if work.mode == "encrypt" and (data_dir / sealed_relative).exists():
            return "encrypted", sealed_relative  # done before a crash, not yet recorded
        if work.mode == "remove":
            return "removed", relative
        raise
    with handle:
        try:  # one job per capture: finalize workers and the CLI may settle one call at once
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if not plain.exists():  # settled by the job that held the lock before us
            return None
        if work.mode == "remove":
            plain.unlink()
            return "removed", relative
        assert work.target is not None
        seal_file(plain, work.target, keep_on_failure=True)
        return "encrypted", sealed_relative


def settle_captures(database: Database, data_dir: Path, call_id: int, base: Settings) -> int:
    """Encrypt or remove the call's raw captures when nothing needs them any more;
    returns how many were dealt with. Safe to call after every finalize: it does
    nothing until the call is complete."""
    try:
        work = database.read(lambda s: _due(s, call_id, base))
    except Exception:
        log.exception("call %s: cannot decide what to do with its captures", call_id)
        return 0
    if work is None:
        return 0
    done = 0
    for segment_id, relative in work.captures:
        try:
            settled = _settle_one(data_dir, work, relative)
        except Exception:
            log.exception("call %s: capture %s: %s failed", call_id, relative, work.mode)
            continue
        if settled is None:
            continue
        state, path = settled

        def record(
            s: Session, segment_id: int = segment_id, state: str = state, path: str = path
        ) -> Any:
            segment = s.get(Segment, segment_id)
            if segment is not None:
                segment.capture_state, segment.capture_path = state, path

        database.write(record)
        done += 1
    return done
