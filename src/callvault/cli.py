"""The ``callvault`` command.

``serve`` runs the recorder (SIP, RTP, HTTP and the finalize workers in one process);
the read commands open the same database directly, so they work while the server runs
(SQLite in WAL mode lets readers in beside the one writer).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from callvault import __version__
from callvault.config import ConfigError, Settings, load_settings

_DATA_HELP = "Data directory (database, captures, recordings). Default ./callvault-data."


def _settings(data: str | None, config: str | None, **overrides: str | None) -> Settings:
    try:
        return load_settings(
            {"data_dir": data, **overrides},
            config_file=Path(config) if config else None,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _open_database(settings: Settings) -> Any:
    from callvault.db import SQLITE_FILENAME, Database  # imported late: keeps --help fast

    if settings.database_url is None and not (settings.data_dir / SQLITE_FILENAME).exists():
        raise click.ClickException(
            f"no callvault database in {settings.data_dir} (start `callvault serve` first, "
            "or pass --data)"
        )
    if settings.database_url:
        return Database(settings.database_url)
    return Database.for_data_dir(settings.data_dir)


@click.group()
@click.version_option(__version__, prog_name="callvault")
def main() -> None:
    """callvault: record SIPREC calls, keep them safe, play them back."""


@main.command()
@click.option("--data", metavar="DIR", help=_DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file (default DIR/callvault.toml).")
@click.option("--sip", metavar="HOST:PORT", help="SIP UDP+TCP listen address [0.0.0.0:5060].")
@click.option("--http", metavar="HOST:PORT", help="HTTP listen address [127.0.0.1:8080].")
@click.option("--rtp-ports", metavar="LO-HI", help="RTP port range [20000-39999].")
@click.option("--rtp-address", metavar="ADDR", help="Address RTP binds [the SIP address].")
@click.option(
    "--advertise-address", metavar="ADDR", help="Address put in SDP and Contact (for NAT)."
)
def serve(
    data: str | None,
    config: str | None,
    sip: str | None,
    http: str | None,
    rtp_ports: str | None,
    rtp_address: str | None,
    advertise_address: str | None,
) -> None:
    """Run the recorder: SIP/SIPREC, RTP capture, finalize workers and HTTP."""
    settings = _settings(
        data,
        config,
        **{
            "sip.listen": sip,
            "http.listen": http,
            "rtp.ports": rtp_ports,
            "rtp.address": rtp_address,
            "sip.advertise_address": advertise_address,
        },
    )
    from callvault.server.app import run

    sys.exit(run(settings))


@main.group()
def calls() -> None:
    """Calls and their recording sessions."""


@calls.command("list")
@click.option("--data", metavar="DIR", help=_DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (one object per call).")
@click.option("--limit", type=int, default=None, help="Newest N calls only.")
def calls_list(data: str | None, config: str | None, as_json: bool, limit: int | None) -> None:
    """List calls, newest first."""
    from callvault.db.queries import calls_as_json

    database = _open_database(_settings(data, config))
    try:
        rows = database.read(lambda s: calls_as_json(s, limit=limit))
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no calls")
        return
    click.echo(f"{'ID':>6}  {'STARTED':25}  {'DURATION':>9}  {'REC':10}  PARTICIPANTS")
    for row in rows:
        duration = "" if row["duration_s"] is None else f"{row['duration_s']:.1f}s"
        states = ",".join(r["state"] for r in row["recordings"]) or "-"
        names = ", ".join(p["name"] or p["aor"] or "?" for p in row["participants"])
        click.echo(f"{row['id']:>6}  {row['started_at']:25}  {duration:>9}  {states:10}  {names}")


@main.group()
def recordings() -> None:
    """Recordings (the files people keep)."""


@recordings.command("get")
@click.argument("recording_id", type=int)
@click.option("--data", metavar="DIR", help=_DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--output", "-o", required=True, metavar="FILE", help="Where to write it.")
def recordings_get(recording_id: int, data: str | None, config: str | None, output: str) -> None:
    """Write recording RECORDING_ID, as stored, to FILE."""
    from callvault.db.queries import recording_by_id

    settings = _settings(data, config)
    database = _open_database(settings)
    try:
        found = database.read(lambda s: _recording_file(s, recording_id, recording_by_id))
    finally:
        database.dispose()
    if found is None:
        raise click.ClickException(f"no recording {recording_id}")
    state, path = found
    if state != "ready" or path is None:
        raise click.ClickException(f"recording {recording_id} is not ready (state: {state})")
    source = settings.data_dir / path
    if not source.exists():
        raise click.ClickException(f"recording {recording_id}: file {source} is missing")
    if output == "-":
        with source.open("rb") as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer)
        return
    shutil.copyfile(source, output)
    click.echo(f"wrote {output} ({Path(output).stat().st_size} bytes)", err=True)


def _recording_file(session: Any, recording_id: int, lookup: Any) -> tuple[str, str | None] | None:
    recording = lookup(session, recording_id)
    if recording is None:
        return None
    return recording.state, recording.path


@main.group("settings")
def settings_group() -> None:
    """Settings: where each value comes from."""


@settings_group.command("show")
@click.option("--data", metavar="DIR", help=_DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def show_settings(data: str | None, config: str | None) -> None:
    """Show every setting's value and where it came from."""
    settings = _settings(data, config)
    for name, value in settings.as_dict().items():
        click.echo(
            f"{name} = {value if value is not None else '(unset)'}  [{settings.sources[name]}]"
        )


if __name__ == "__main__":
    main()
