"""``callvault calls ...`` and ``callvault recordings ...``: read and make recordings."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from callvault.cli.common import DATA_HELP, cli_settings, open_database


@click.group()
def calls() -> None:
    """Calls and their recording sessions."""


@calls.command("list")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (one object per call).")
@click.option("--limit", type=int, default=None, help="Newest N calls only.")
def calls_list(data: str | None, config: str | None, as_json: bool, limit: int | None) -> None:
    """List calls, newest first."""
    from callvault.db.queries import calls_as_json

    database = open_database(cli_settings(data, config))
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


@click.group()
def recordings() -> None:
    """Recordings (the files people keep)."""


@recordings.command("get")
@click.argument("recording_id", type=int)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--output", "-o", required=True, metavar="FILE", help="Where to write it.")
@click.option(
    "--encrypted",
    is_flag=True,
    help="An encrypted recording's stored ciphertext as it is (decrypt it with gpg).",
)
@click.option("--passphrase", metavar="P", help="The private key's passphrase, when it has one.")
def recordings_get(
    recording_id: int,
    data: str | None,
    config: str | None,
    output: str,
    encrypted: bool,
    passphrase: str | None,
) -> None:
    """Write recording RECORDING_ID's audio to FILE (- for stdout).

    An encrypted recording is decrypted with the private key stored in the system (and
    --passphrase if it needs one), in memory as it is written; --encrypted writes the
    stored OpenPGP file instead. The file is read from the recording's store (the data
    directory or S3).
    """
    from callvault.crypto.access import NoPrivateKey, open_plaintext, opening
    from callvault.crypto.openpgp import OpenPGPError, PassphraseRequired
    from callvault.store import StoreError, store_for
    from callvault.web.keys import load_secret

    settings = cli_settings(data, config)
    database = open_database(settings)
    try:
        found = database.read(lambda s: _recording_file(s, recording_id, settings))
        if found is None:
            raise click.ClickException(f"no recording {recording_id}")
        recording, effective = found
        if recording.state != "ready" or recording.path is None:
            raise click.ClickException(
                f"recording {recording_id} is not ready (state: {recording.state})"
            )
        if encrypted and not recording.encrypted:
            raise click.ClickException(
                f"recording {recording_id} is not encrypted: leave out --encrypted"
            )
        store = store_for(effective, recording.store)
        chunks: Iterable[bytes]
        if recording.encrypted and not encrypted:
            secret = load_secret(settings.data_dir)
            opened = database.read(lambda s: opening(s, recording, secret))
            try:
                chunks = open_plaintext(store, opened, passphrase)
            except NoPrivateKey as exc:
                raise click.ClickException(
                    f"{exc}: use --encrypted to get the .gpg file and decrypt it where the "
                    "private key is"
                ) from None
            except PassphraseRequired:
                raise click.ClickException(
                    f"recording {recording_id} is encrypted with a key that needs its "
                    "passphrase: give --passphrase"
                ) from None
            except OpenPGPError as exc:
                raise click.ClickException(str(exc)) from None
        else:
            chunks = store.read(recording.path)
        written = _write_out(chunks, output, recording_id)
    except FileNotFoundError:
        raise click.ClickException(f"recording {recording_id}: its file is missing") from None
    except StoreError as exc:
        raise click.ClickException(f"recording {recording_id}: {exc}") from None
    finally:
        database.dispose()
    if output != "-":
        click.echo(f"wrote {output} ({written} bytes)", err=True)


def _recording_file(session: Any, recording_id: int, base: Any) -> tuple[Any, Any] | None:
    """The recording and the effective settings (its store may be the S3 bucket)."""
    from callvault.db.queries import recording_by_id
    from callvault.runtime_settings import effective_settings

    recording = recording_by_id(session, recording_id)
    if recording is None:
        return None
    return recording, effective_settings(session, base, check=False)


def _write_out(chunks: Iterable[bytes], output: str, recording_id: int) -> int:
    """Write the chunks to ``output`` (``-``: stdout); a failure leaves no partial file."""
    from callvault.crypto.openpgp import OpenPGPError
    from callvault.store import StoreError

    written = 0
    try:
        if output == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
                written += len(chunk)
            sys.stdout.buffer.flush()
            return written
        with Path(output).open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
    except (OpenPGPError, StoreError, OSError) as exc:
        if output != "-":
            Path(output).unlink(missing_ok=True)
        raise click.ClickException(f"recording {recording_id}: {exc}") from None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return written


def _run_job(settings: Any, job: Any) -> str:
    """Run a finalize-type job here, in this process (the operator waits for it)."""
    import time

    database = open_database(settings)
    try:
        return str(job(database, settings.data_dir.resolve(), settings, time.time()))
    finally:
        database.dispose()


@recordings.command("remake")
@click.argument("recording_id", type=int)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def recordings_remake(recording_id: int, data: str | None, config: str | None) -> None:
    """Make recording RECORDING_ID again from its capture, with today's settings.

    Runs now, here, whatever the mixer windows say (e.g. after changing the format or
    the layout, or for a recording that failed).
    """
    from callvault.recording.finalize import finalize_recording

    settings = cli_settings(data, config)
    state = _run_job(
        settings,
        lambda db, data_dir, base, now: finalize_recording(
            db, data_dir, recording_id, settings=base, now=now, force=True
        ),
    )
    if state in ("failed", "skipped"):
        raise click.ClickException(f"recording {recording_id}: {state}")
    click.echo(f"recording {recording_id}: {state}")


@calls.command("stitch")
@click.argument("call_id", type=int)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def calls_stitch(call_id: int, data: str | None, config: str | None) -> None:
    """Make (or make again) the stitched recording of call CALL_ID: all its segments on
    the call's timeline in one file."""
    from callvault.recording.stitch import make_stitched, request_stitch

    settings = cli_settings(data, config)

    def job(database: Any, data_dir: Path, base: Any, now: float) -> str:
        recording_id = database.write(lambda s: request_stitch(s, call_id, only_if_complete=False))
        if recording_id is None:
            return "nothing to stitch"
        state = make_stitched(database, data_dir, recording_id, base, now, force=True)
        return f"recording {recording_id}: {state}"

    outcome = _run_job(settings, job)
    if not outcome.endswith("ready"):
        raise click.ClickException(f"call {call_id}: {outcome}")
    click.echo(f"call {call_id}: stitched {outcome}")
