"""``callvault keys set|show``: the OpenPGP keys recordings are encrypted to (T8-T12).

``set`` checks the keys (a real encrypt/decrypt round trip when a private key is given,
unlocked with ``--passphrase``, which is then forgotten) and makes them the active key;
a refused key exits with code 2 and says why. ``show`` prints the active key, its
expiry warnings, whether its private key is in the system, and the older keys. The
private key is stored sealed with the server secret of the data directory
(``DATA/secret.key``): run ``set`` with the ``--data`` of the server that plays.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from callvault.cli.common import DATA_HELP, cli_settings, open_database

__all__ = ["keys"]


class KeyRefused(click.ClickException):
    """A key that cannot be set (exit code 2, like a bad setting value)."""

    exit_code = 2


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise KeyRefused(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


@click.group()
def keys() -> None:
    """OpenPGP keys that recordings are encrypted to."""


@keys.command("set")
@click.option("--public", "public", required=True, metavar="FILE", help="Public key (armoured).")
@click.option("--private", "private", metavar="FILE", help="Private key (armoured), optional.")
@click.option(
    "--passphrase",
    metavar="P",
    help="The private key's passphrase: only checks the pair, never stored.",
)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def keys_set(
    public: str, private: str | None, passphrase: str | None, data: str | None, config: str | None
) -> None:
    """Set the active key: new recordings are encrypted to it; older keys stay for the
    recordings made before."""
    from callvault.crypto.keys import active_key, key_json, prepare_key, save_key
    from callvault.crypto.openpgp import OpenPGPError
    from callvault.web.audit import record
    from callvault.web.keys import load_secret

    settings = cli_settings(data, config)
    public_text = _read(public, "public key")
    private_text = _read(private, "private key") if private else None
    database = open_database(settings)
    now = datetime.now(UTC)
    actor = f"cli:{getpass.getuser()}"
    try:
        try:
            prepared = prepare_key(
                public_text,
                private_text,
                passphrase,
                secret=load_secret(settings.data_dir),
                now=now,
            )
        except OpenPGPError as exc:
            raise KeyRefused(f"key not set: {exc}") from None

        def save(db: Any) -> dict[str, Any]:
            before = active_key(db)
            row = save_key(db, prepared, actor=actor)
            record(
                db,
                None,
                "keys.set",
                target_type="encryption_key",
                target_id=row.fingerprint,
                actor=actor,
                private_key=prepared.sealed_private_key is not None,
                replaced=before.fingerprint
                if before is not None and before.fingerprint != row.fingerprint
                else None,
            )
            return key_json(row, now)

        shown = database.write(save)
    finally:
        database.dispose()
    click.echo(f"active key {shown['fingerprint']} ({', '.join(shown['user_ids'])})")
    if shown["private_key"]:
        protected = ", protected by a passphrase" if shown["passphrase_protected"] else ""
        click.echo(f"private key stored{protected}: encrypted recordings play in the system")
    for warning in shown["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _describe(key: dict[str, Any]) -> list[str]:
    private = "not in the system (recordings download as .gpg only)"
    if key["private_key"]:
        private = "in the system" + (
            ", needs its passphrase" if key["passphrase_protected"] else ""
        )
    lines = [
        f"fingerprint: {key['fingerprint']}",
        f"user ids:    {', '.join(key['user_ids']) or '-'}",
        f"algorithm:   {key['algorithm'] or '-'}",
        f"expires:     {key['expires_at'] or 'never'}",
        f"private key: {private}",
        f"set:         {key['created_at']} by {key['created_by'] or '-'}",
    ]
    return lines + [f"WARNING:     {w}" for w in key["warnings"]]


@keys.command("show")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: active, older, encryption.")
def keys_show(data: str | None, config: str | None, as_json: bool) -> None:
    """The active key (fingerprint, user ids, expiry and warnings, private key in the
    system or not) and the older keys."""
    from callvault.crypto.keys import keys_overview
    from callvault.runtime_settings import effective_settings

    settings = cli_settings(data, config)
    database = open_database(settings)
    now = datetime.now(UTC)

    def read(db: Any) -> dict[str, Any]:
        state = keys_overview(db, now)
        state["encryption_enabled"] = bool(
            effective_settings(db, settings, check=False)["encryption.enabled"]
        )
        return state

    try:
        state = database.read(read)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"encryption of new recordings: {'on' if state['encryption_enabled'] else 'off'}")
    if state["active"] is None:
        click.echo("no key is set (callvault keys set --public FILE)")
    else:
        click.echo("active key:")
        click.echo("\n".join("  " + line for line in _describe(state["active"])))
    for key in state["older"]:
        click.echo("older key:")
        click.echo("\n".join("  " + line for line in _describe(key)))
