"""``callvault purge`` and ``callvault hold ...``: retention now, and legal holds.

``purge`` runs the same job the server runs daily (:mod:`callvault.recording.purge`):
it deletes every copy of the recordings whose retention has passed and no hold keeps,
and prints what went (``--dry-run``: what would go; ``--as-of``: as if it were then).
``hold set|release`` puts a legal hold on a call (all its recordings) or, with
``--recording``, on one recording, or lifts it. Every action is audited as the
operating-system user who ran it (``cli:<login>``).
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any

import click

from callvault.cli.common import DATA_HELP, cli_settings, open_database

__all__ = ["hold", "purge_command"]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        return "cli:unknown"


def parse_as_of(text: str) -> datetime:
    """``2024-03-01`` (midnight UTC starting that day) or an ISO date and time (UTC when
    it names no offset)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date or date and time (e.g. 2024-03-01 or "
            "2024-03-01T12:00:00Z)"
        ) from None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable day
        raise click.BadParameter(f"{text!r} is out of the range of dates") from None


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


@click.command("purge")
@click.option(
    "--as-of",
    metavar="ISO_DATE",
    help="Delete what is due at this date (midnight UTC) or time instead of now.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def purge_command(
    as_of: str | None, dry_run: bool, as_json: bool, data: str | None, config: str | None
) -> None:
    """Run retention now: delete every copy of the recordings whose time is up.

    Recordings under a legal hold are kept and listed as held.
    """
    from callvault.recording.purge import purge

    when = parse_as_of(as_of) if as_of else None
    settings = cli_settings(data, config)
    database = open_database(settings)
    try:
        report = purge(
            database,
            datetime.now(UTC),
            dry_run,
            base=settings,
            data_dir=settings.data_dir.resolve(),
            as_of=when,
            actor=_actor(),
        )
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report.as_json())
    if report.errors:
        raise click.ClickException(f"{len(report.errors)} files could not be deleted")


def _print_report(report: dict[str, Any]) -> None:
    verb = "would delete" if report["dry_run"] else "deleted"
    click.echo(
        f"{'dry run, ' if report['dry_run'] else ''}as of {report['as_of']}: {verb} "
        f"{len(report['recordings'])} recordings of {len(report['call_ids'])} calls, "
        f"{len(report['captures'])} captures, {report['share_links']} share links; "
        f"{_size(report['bytes_freed'])} ({report['bytes_freed']} bytes) freed"
    )
    for item in report["recordings"]:
        click.echo(
            f"  recording {item['id']} (call {item['call_id']}, {item['kind']}, "
            f"{item['size_bytes']} bytes, due {item['retain_until']})"
        )
    for capture in report["captures"]:
        click.echo(f"  capture {capture}")
    if report["calls_deleted"]:
        click.echo(f"calls {verb}: {', '.join(map(str, report['calls_deleted']))}")
    if report["held"]:
        click.echo(f"kept by a legal hold: recordings {', '.join(map(str, report['held']))}")
    for error in report["errors"]:
        click.echo(f"error: {error}", err=True)


@click.group()
def hold() -> None:
    """Legal holds: keep a call or a recording whatever retention says."""


def _target(target_id: int, recording: bool) -> dict[str, int]:
    return {"recording_id": target_id} if recording else {"call_id": target_id}


def _hold_json(row: Any) -> dict[str, Any]:
    from callvault.recording.retention import hold_json

    return hold_json(row)


def _change_hold(
    action: str, target_id: int, recording: bool, reason: str | None, data: str | None
) -> dict[str, Any]:
    from callvault.recording import retention
    from callvault.web.audit import record

    settings = cli_settings(data, None)
    database = open_database(settings)
    actor = _actor()
    target = _target(target_id, recording)

    def change(db: Any) -> dict[str, Any]:
        if action == "set":
            row = retention.place_hold(db, reason=reason, by=actor, **target)
        else:
            row = retention.release_hold(db, by=actor, **target)
        record(
            db,
            None,
            f"hold.{action}",
            target_type="recording" if recording else "call",
            target_id=target_id,
            actor=actor,
            hold_id=row.id,
            reason=row.reason if action == "set" else None,
        )
        return _hold_json(row)

    try:
        return database.write(change)  # type: ignore[no-any-return]
    except (retention.NoSuchTarget, retention.HoldConflict) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()


_RECORDING_HELP = "ID is a recording's id (default: a call's)."


@hold.command("set")
@click.argument("target_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--reason", metavar="R", help="Why (a case number, a request).")
@click.option("--recording", is_flag=True, help=_RECORDING_HELP)
@click.option("--data", metavar="DIR", help=DATA_HELP)
def hold_set(target_id: int, reason: str | None, recording: bool, data: str | None) -> None:
    """Put a legal hold on call ID (all its recordings) or, with --recording, on
    recording ID: nothing held is deleted until the hold is released."""
    row = _change_hold("set", target_id, recording, reason, data)
    what = "recording" if recording else "call"
    click.echo(f"{what} {target_id} is on hold (hold {row['id']})")


@hold.command("release")
@click.argument("target_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--recording", is_flag=True, help=_RECORDING_HELP)
@click.option("--data", metavar="DIR", help=DATA_HELP)
def hold_release(target_id: int, recording: bool, data: str | None) -> None:
    """Release the legal hold on call ID (or recording ID): retention applies again."""
    row = _change_hold("release", target_id, recording, None, data)
    what = "recording" if recording else "call"
    click.echo(f"{what} {target_id}: hold {row['id']} released")


@hold.command("list")
@click.option("--all", "everything", is_flag=True, help="Released holds too.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--data", metavar="DIR", help=DATA_HELP)
def hold_list(everything: bool, as_json: bool, data: str | None) -> None:
    """Legal holds in force (with --all: released ones too), oldest first."""
    from sqlalchemy import select

    from callvault.db.safety import LegalHold

    database = open_database(cli_settings(data, None))

    def read(db: Any) -> list[dict[str, Any]]:
        query = select(LegalHold).order_by(LegalHold.id)
        if not everything:
            query = query.where(LegalHold.released_at.is_(None))
        return [_hold_json(row) for row in db.scalars(query)]

    try:
        rows = database.read(read)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no holds")
    for row in rows:
        what = f"call {row['call_id']}" if row["call_id"] else f"recording {row['recording_id']}"
        state = (
            f"released {row['released_at']} by {row['released_by']}"
            if row["released_at"]
            else "active"
        )
        click.echo(
            f"hold {row['id']}: {what}, set {row['set_at']} by {row['set_by']}"
            f"{': ' + row['reason'] if row['reason'] else ''} ({state})"
        )
