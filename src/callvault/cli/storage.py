"""``callvault storage move`` and ``callvault verify``: recording files in their stores.

``move`` takes every ready recording from one store to the other, one at a time: copy,
confirm (size and SHA-256, from the target store), switch the row in one transaction,
then remove the source. Interrupted at any point it is simply run again: rows already
switched are not moved twice, and copies left behind by an interruption between the
switch and the removal are removed once the target is confirmed to hold the file.

``verify`` re-reads every recording file from the store its row names and compares
size and SHA-256 with the database; then lists each store's ``recordings/`` keys and
reports those no recording owns (REQUIREMENTS U7: every recording is playable or
flagged, every stored file belongs to a recording or is reported).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from callvault.cli.common import DATA_HELP, cli_settings, open_database

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.orm import Session

    from callvault.config import Settings
    from callvault.db import Database
    from callvault.store import BlobStore

#: Where recording files live in either store (captures and the database stay apart).
RECORDINGS = "recordings/"


@click.group("storage")
def storage() -> None:
    """Recording files in their stores: the data directory (local) or S3."""


@dataclass(frozen=True, slots=True)
class _Item:
    recording_id: int
    key: str
    sha256: str
    size: int


@storage.command("move")
@click.option("--to", "target", type=click.Choice(["s3", "local"]), required=True)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--dry-run", is_flag=True, help="Only say what would move.")
def storage_move(target: str, data: str | None, config: str | None, dry_run: bool) -> None:
    """Move every ready recording's file to the S3 bucket or to the data directory.

    Each file is confirmed by the target store (size and SHA-256) before its row is
    switched and the source removed; run it again after an interruption to finish.
    """
    settings = cli_settings(data, config)
    database = open_database(settings)
    try:
        effective = _effective(database, settings)
        if target == "local" and effective["storage.backend"] == "s3":
            raise click.ClickException(
                "storage.backend is s3: the server would upload the recordings again; set "
                "storage.backend local first (callvault settings set storage.backend local)"
            )
        source_name = "local" if target == "s3" else "s3"
        stores = {name: _store(effective, name) for name in (source_name, target)}
        items = database.read(lambda s: _stored_in(s, source_name))
        total = sum(item.size for item in items)
        if dry_run:
            for item in items:
                click.echo(f"recording {item.recording_id}: {item.key} ({item.size} bytes)")
            click.echo(
                f"would move {len(items)} recordings ({total} bytes) from {source_name} to {target}"
            )
            return
        moved, failed = 0, []
        with _progress() as progress:
            task = progress.add_task(f"to {target}", total=total)
            for item in items:
                try:
                    _move(database, stores[source_name], stores[target], item)
                    moved += 1
                except (OSError, click.ClickException) as exc:
                    if _now_in(database, item) == target:  # the server's uploader was quicker
                        moved += 1
                    else:
                        failed.append(f"recording {item.recording_id} ({item.key}): {exc}")
                progress.advance(task, item.size)
        cleaned = _finish_interrupted(database, stores[source_name], stores[target], target)
        _audit(database, target, moved=moved, failed=len(failed), size=total)
    finally:
        database.dispose()
    click.echo(f"moved {moved} recordings ({total} bytes) to {target}")
    if cleaned:
        click.echo(f"removed {cleaned} copies left in {source_name} by an interrupted move")
    if target == "s3" and effective["storage.backend"] != "s3":
        click.echo("note: storage.backend is local: new recordings stay in the data directory")
    for line in failed:
        click.echo(f"failed: {line}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} recordings not moved (run it again)")


def _move(database: Database, source: BlobStore, target: BlobStore, item: _Item) -> None:
    from callvault.store import LocalStore
    from callvault.store.uploader import Claim, record_upload

    if isinstance(source, LocalStore):  # to S3
        target.put(item.key, source.path(item.key), sha256=item.sha256)
        claim = Claim(item.recording_id, item.key, item.sha256, 0)
        if not database.write(lambda s: record_upload(s, claim, datetime.now(UTC))):
            raise click.ClickException("the recording changed meanwhile; not moved")
        source.delete(item.key)
        return
    assert isinstance(target, LocalStore)
    final = target.path(item.key)
    final.parent.mkdir(parents=True, exist_ok=True)
    download = final.with_name(final.name + ".download")
    try:
        digest = hashlib.sha256()
        with download.open("wb") as handle:
            for chunk in source.read(item.key):
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != item.sha256:
            raise click.ClickException(
                f"its SHA-256 in S3 is {digest.hexdigest()}, not {item.sha256}"
            )
        download.replace(final)
    finally:
        download.unlink(missing_ok=True)
    target.put(item.key, final, sha256=item.sha256)  # the file on disk, read back
    if not database.write(lambda s: _switch_to_local(s, item)):
        raise click.ClickException("the recording changed meanwhile; not moved")
    source.delete(item.key)


def _switch_to_local(db: Session, item: _Item) -> bool:
    from callvault.db.models import Recording
    from callvault.store.uploader import stored_locally

    row = db.get(Recording, item.recording_id)
    if row is None or (row.state, row.store, row.path, row.sha256) != (
        "ready",
        "s3",
        item.key,
        item.sha256,
    ):
        return False
    stored_locally(row, datetime.now(UTC))
    return True


def _finish_interrupted(
    database: Database, source: BlobStore, target: BlobStore, target_name: str
) -> int:
    """Remove source copies of recordings already switched to the target, once the
    target is seen to hold each file (a move interrupted after its switch)."""
    switched = {item.key: item for item in database.read(lambda s: _stored_in(s, target_name))}
    cleaned = 0
    for key in list(source.keys(RECORDINGS)):
        item = switched.get(key)
        if item is None:
            continue
        held = target.stat(key)
        if held is not None and held.size == item.size:
            source.delete(key)
            cleaned += 1
    return cleaned


def _stored_in(db: Session, store: str) -> list[_Item]:
    from sqlalchemy import select

    from callvault.db.models import Recording

    rows = db.execute(
        select(Recording.id, Recording.path, Recording.sha256, Recording.size_bytes)
        .where(
            Recording.state == "ready",
            Recording.store == store,
            Recording.stored_at.is_not(None),
            Recording.path.is_not(None),
            Recording.sha256.is_not(None),
        )
        .order_by(Recording.id)
    ).all()
    return [_Item(i, str(p), str(h), int(n or 0)) for i, p, h, n in rows]


def _now_in(database: Database, item: _Item) -> str | None:
    from callvault.db.models import Recording

    row = database.read(lambda s: s.get(Recording, item.recording_id))
    if row is None or row.path != item.key or row.state != "ready":
        return None
    return row.store


# -- verify ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    problem: str  # missing | altered | orphan | leftover | unreadable
    store: str
    key: str | None
    recording_id: int | None
    detail: str


@click.command("verify")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(data: str | None, config: str | None, as_json: bool) -> None:
    """Re-read every recording file from its store and compare it with the database.

    Reports missing and altered files (size or SHA-256 not as recorded) and files in a
    store that no recording owns; exit code 1 when anything was found.
    """
    settings = cli_settings(data, config)
    database = open_database(settings)
    try:
        checked, size, problems = verify_stores(database, _effective(database, settings))
    finally:
        database.dispose()
    if as_json:
        report = {
            "checked": checked,
            "bytes": size,
            "ok": not problems,
            "problems": [asdict(p) for p in problems],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        for p in problems:
            where = f"{p.store}:{p.key}" if p.key else p.store
            owner = f"recording {p.recording_id}, " if p.recording_id is not None else ""
            click.echo(f"{p.problem.upper()}: {owner}{where}: {p.detail}")
        click.echo(f"checked {checked} recordings ({size} bytes): {len(problems)} problems")
    if problems:
        raise SystemExit(1)


def verify_stores(database: Database, settings: Settings) -> tuple[int, int, list[Problem]]:
    """(recordings checked, bytes re-read, problems) for every store in use."""
    from sqlalchemy import select

    from callvault.db.models import Recording
    from callvault.store import StoreError

    rows = [
        (int(rid), str(state), str(store), str(path), sha, size)
        for rid, state, store, path, sha, size in database.read(
            lambda s: s.execute(
                select(
                    Recording.id,
                    Recording.state,
                    Recording.store,
                    Recording.path,
                    Recording.sha256,
                    Recording.size_bytes,
                )
                .where(Recording.path.is_not(None), Recording.state != "deleted")
                .order_by(Recording.id)
            ).all()
        )
    ]
    owners = {(row[2], row[3]): row[0] for row in rows}
    names = {"local"} | {row[2] for row in rows}
    if settings["storage.s3.bucket"]:
        names.add("s3")
    problems: list[Problem] = []
    stores: dict[str, BlobStore] = {}
    for name in sorted(names):
        try:
            stores[name] = _store(settings, name)
        except click.ClickException as exc:
            problems.append(Problem("unreadable", name, None, None, exc.message))
    ready = [row for row in rows if row[1] == "ready"]
    checked = size = 0
    with _progress() as progress:
        task = progress.add_task("verify", total=sum(int(row[5] or 0) for row in ready))
        for rid, _state, store_name, path, sha256, expected in ready:
            store = stores.get(store_name)
            if store is None:
                continue
            checked += 1
            try:
                found, length = _sha256_of(store, path)
            except FileNotFoundError:
                problems.append(Problem("missing", store_name, path, rid, "not in its store"))
                continue
            except (StoreError, OSError) as exc:
                problems.append(Problem("unreadable", store_name, path, rid, str(exc)))
                continue
            finally:
                progress.advance(task, int(expected or 0))
            size += length
            if expected is not None and length != expected:
                detail = f"{length} bytes, the database says {expected}"
                problems.append(Problem("altered", store_name, path, rid, detail))
            elif found != sha256:
                detail = f"SHA-256 {found}, the database says {sha256 or 'nothing'}"
                problems.append(Problem("altered", store_name, path, rid, detail))
    for name, store in stores.items():
        other = "s3" if name == "local" else "local"
        try:
            keys = list(store.keys(RECORDINGS))
        except (StoreError, OSError) as exc:
            problems.append(Problem("unreadable", name, None, None, str(exc)))
            continue
        for key in keys:
            if (name, key) in owners:
                continue
            if (owner := owners.get((other, key))) is not None:
                detail = f"a copy left over: the recording is stored in {other}"
                problems.append(Problem("leftover", name, key, owner, detail))
            else:
                problems.append(Problem("orphan", name, key, None, "no recording owns this file"))
    return checked, size, problems


def _sha256_of(store: BlobStore, key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    length = 0
    for chunk in store.read(key):
        digest.update(chunk)
        length += len(chunk)
    return digest.hexdigest(), length


# -- shared ---------------------------------------------------------------------------


def _effective(database: Database, settings: Settings) -> Settings:
    from callvault.config import ConfigError
    from callvault.runtime_settings import effective_settings

    try:
        return database.read(lambda s: effective_settings(s, settings, check=False))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _store(settings: Settings, name: str) -> BlobStore:
    from callvault.store import StoreError, store_for

    try:
        return store_for(settings, name)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _progress() -> Iterator[Progress]:
    """A progress bar by bytes on stderr, drawn only on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        yield progress


def _audit(database: Database, target: str, **detail: Any) -> None:
    import getpass

    from callvault.web.audit import record

    try:
        actor = f"cli:{getpass.getuser()}"[:128]
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        actor = "cli"
    database.write(
        lambda s: record(
            s, None, "storage.move", target_type="storage", target_id=target, actor=actor, **detail
        )
    )
