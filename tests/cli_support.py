"""What the CLI tests share: a process environment without ``CALLVAULT_*`` settings (the
commands read them), a migrated data directory, and ``run``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callvault.cli import main
from callvault.db import Database


def drop_callvault_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every ``CALLVAULT_*`` variable for the test."""
    for name in list(os.environ):
        if name.startswith("CALLVAULT_"):
            monkeypatch.delenv(name)


def migrated_database(data: Path) -> Database:
    """A new data directory ``data`` with its (SQLite) database made."""
    data.mkdir()
    database = Database.for_data_dir(data)
    database.migrate()
    return database


def run(data: Path, *args: str) -> Result:
    """``callvault ARGS --data DATA`` in process."""
    return CliRunner().invoke(main, [*args, "--data", str(data)])
