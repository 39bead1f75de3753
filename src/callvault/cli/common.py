"""What every ``callvault`` command shares: settings, the database, the --data help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from callvault.config import ConfigError, Settings, load_settings

DATA_HELP = "Data directory (database, captures, recordings). Default ./callvault-data."


def cli_settings(data: str | None, config: str | None, **overrides: str | None) -> Settings:
    try:
        return load_settings(
            {"data_dir": data, **overrides},
            config_file=Path(config) if config else None,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def open_database(settings: Settings) -> Any:
    from callvault.db import SQLITE_FILENAME, Database  # imported late: keeps --help fast

    if settings.database_url is None and not (settings.data_dir / SQLITE_FILENAME).exists():
        raise click.ClickException(
            f"no callvault database in {settings.data_dir} (start `callvault serve` first, "
            "or pass --data)"
        )
    if settings.database_url:
        return Database(settings.database_url)
    return Database.for_data_dir(settings.data_dir)
