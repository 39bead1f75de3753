"""Job entry points: plain functions of plain arguments, importable in any worker.

The local runner calls them in a process pool; the Celery runner (scale-out) will wrap
the same functions. Each is idempotent: running one twice, or after a crash, is safe.
"""

from __future__ import annotations

from pathlib import Path

from callvault.config import Settings, load_settings
from callvault.db import Database
from callvault.recording.finalize import finalize_recording

_databases: dict[str, Database] = {}


def _database(url: str) -> Database:
    # One engine per worker process, reused across jobs.
    if url not in _databases:
        _databases[url] = Database(url)
    return _databases[url]


def worker_settings(data_dir: str, config_file: str | None) -> Settings:
    """The settings a worker sees: the server's file and environment (inherited)."""
    return load_settings(
        {"data_dir": data_dir}, config_file=Path(config_file) if config_file else None
    )


def finalize(
    data_dir: str, database_url: str, recording_id: int, config_file: str | None = None
) -> str:
    """Turn recording ``recording_id``'s capture into its file(s); returns its new state."""
    return finalize_recording(
        _database(database_url),
        Path(data_dir),
        recording_id,
        settings=worker_settings(data_dir, config_file),
    )
