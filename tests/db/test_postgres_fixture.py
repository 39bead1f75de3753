"""The shared PostgreSQL fixture fails loudly, never skips, when PostgreSQL is missing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests import conftest


def test_missing_postgres_binaries_fail_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conftest, "PG_BIN", tmp_path / "no-postgresql")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL 15 is needed for these tests"):
        conftest._Cluster()


@pytest.mark.postgres
def test_postgres_url_points_at_a_live_server(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
    ) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()
    assert version is not None and int(version[0]) >= 150000
