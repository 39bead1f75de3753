"""``callvault settings ...``: see where each value comes from; change them."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from callvault.cli.common import DATA_HELP, cli_settings
from callvault.config import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from callvault.db import Database


@click.group("settings")
def settings_group() -> None:
    """Settings: see where each value comes from; change them.

    Runtime settings (recording format, layout, file names, mixer windows...) are saved in
    the database and apply to the next recording; start-up settings are written into the
    settings file and apply at the next start of `callvault serve`.
    """


class _SettingRefused(click.ClickException):
    exit_code = 2


def _settings_database(settings: Settings, *, create: bool) -> Database | None:
    """The database for runtime settings; ``None`` when there is none yet and not ``create``."""
    from callvault.db import SQLITE_FILENAME, Database  # imported late: keeps --help fast

    if settings.database_url is None and not (settings.data_dir / SQLITE_FILENAME).exists():
        if not create:
            return None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = (
        Database(settings.database_url)
        if settings.database_url
        else Database.for_data_dir(settings.data_dir)
    )
    if create:
        database.migrate()  # idempotent; a server that never ran has no tables yet
    return database


def _writable_database(settings: Settings) -> Database:
    database = _settings_database(settings, create=True)
    assert database is not None  # create=True always opens one
    return database


def _effective(settings: Settings) -> Settings:
    """``settings`` with the database's runtime values, unchecked (listings show all)."""
    from sqlalchemy import inspect

    from callvault.runtime_settings import effective_settings

    def read(session: Session) -> Settings:
        # A database last migrated by an older callvault has no setting table yet.
        if not inspect(session.connection()).has_table("setting"):
            return settings
        return effective_settings(session, settings, check=False)

    database = _settings_database(settings, create=False)
    if database is None:
        return settings
    try:
        return database.read(read)
    except ConfigError as exc:
        raise _SettingRefused(str(exc)) from None
    finally:
        database.dispose()


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"


@settings_group.command("list")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (one object each).")
def settings_list(data: str | None, config: str | None, as_json: bool) -> None:
    """Show every setting: value, where it came from, runtime or start-up, help."""
    from callvault.config import SETTINGS, format_value
    from callvault.runtime_settings import consistency_problem

    settings = _effective(cli_settings(data, config))
    rows = [
        {
            "name": s.name,
            "value": format_value(settings[s.name]),
            "source": settings.sources[s.name],
            "runtime": s.runtime,
            "default": s.default,
            "help": s.help,
        }
        for s in SETTINGS
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            value = "(unset)" if row["value"] is None else row["value"]
            kind = "runtime" if row["runtime"] else "start-up"
            click.echo(f"{row['name']} = {value}  [{row['source']}; {kind}]")
            click.echo(f"    {row['help']}")
    if problem := consistency_problem(settings):
        click.echo(f"warning: {problem}", err=True)


settings_group.add_command(settings_list, "show")


@settings_group.command("get")
@click.argument("key")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def settings_get(key: str, data: str | None, config: str | None) -> None:
    """Print the value of setting KEY only (empty when unset), for scripts."""
    from callvault.config import format_value
    from callvault.runtime_settings import known_setting

    try:
        known_setting(key)
    except ConfigError as exc:
        raise _SettingRefused(str(exc)) from None
    click.echo(format_value(_effective(cli_settings(data, config))[key]) or "")


@settings_group.command("set")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY VALUE [KEY VALUE]...")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file (start-up settings).")
def settings_set(pairs: tuple[str, ...], data: str | None, config: str | None) -> None:
    """Set KEY to VALUE (several pairs are checked and saved together).

    A runtime setting is saved in the database and used from the next recording on; a
    start-up setting is written into the settings file for the next start. A bad value
    is refused with exit code 2.
    """
    from callvault.config import format_value
    from callvault.runtime_settings import (
        known_setting,
        parse_value,
        set_settings,
        settings_file,
        write_settings_file,
    )

    if len(pairs) % 2:
        raise click.UsageError("expected KEY VALUE pairs")
    changes = dict(zip(pairs[::2], pairs[1::2], strict=True))
    base = cli_settings(data, config)
    try:
        for name, text in changes.items():
            parse_value(known_setting(name), text)
        runtime = {n: t for n, t in changes.items() if known_setting(n).runtime}
        startup = {n: t for n, t in changes.items() if n not in runtime}
        path = settings_file(data, config)
        if runtime:
            database = _writable_database(base)
            try:
                saved = database.write(
                    lambda s: set_settings(s, runtime, updated_by=_who(), base=base)
                )
            finally:
                database.dispose()
            for name, value in saved.items():
                click.echo(f"{name} = {format_value(value)}  (saved; used from the next recording)")
        if startup:
            write_settings_file(path, startup)
    except ConfigError as exc:
        raise _SettingRefused(str(exc)) from None
    for name, text in startup.items():
        click.echo(f"{name} = {text}  (written to {path}; takes effect at the next start)")
        if (env_var := known_setting(name).env_var) in os.environ:
            click.echo(f"note: {env_var} is set here and overrides the file", err=True)


@settings_group.command("reset")
@click.argument("key")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file (start-up settings).")
def settings_reset(key: str, data: str | None, config: str | None) -> None:
    """Forget the value set for KEY: the file, environment or default applies again.

    For a runtime setting that is the database's value; for a start-up setting, its
    line in the settings file.
    """
    from callvault.config import format_value
    from callvault.runtime_settings import (
        known_setting,
        reset_setting,
        settings_file,
        write_settings_file,
    )

    base = cli_settings(data, config)
    try:
        setting = known_setting(key)
        if setting.runtime:
            database = _writable_database(base)
            try:
                database.write(lambda s: reset_setting(s, key, base=base))
            finally:
                database.dispose()
            now = _effective(base)
            click.echo(f"{key} = {format_value(now[key])}  (from {now.sources[key]})")
            return
        path = settings_file(data, config)
        write_settings_file(path, {key: None})
    except ConfigError as exc:
        raise _SettingRefused(str(exc)) from None
    click.echo(f"{key} removed from {path}; takes effect at the next start")
