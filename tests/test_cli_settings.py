"""`callvault settings list|show|get|set|reset`, on a data directory as an admin uses it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from callvault.cli import main
from callvault.db import SQLITE_FILENAME, Database, Setting, alembic_config
from tests.cli_support import drop_callvault_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_callvault_environment(monkeypatch)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["settings", *args], env=env)


def test_get_prints_the_value_only_and_creates_nothing(tmp_path: Path) -> None:
    result = run("get", "recording.format", "--data", str(tmp_path))
    assert (result.exit_code, result.stdout) == (0, "ogg\n")
    assert run("get", "rtp.address", "--data", str(tmp_path)).stdout == "\n"  # unset
    assert list(tmp_path.iterdir()) == []


def test_set_saves_a_runtime_setting_in_a_new_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run("set", "recording.format", "mp3", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert result.stdout == "recording.format = mp3  (saved; used from the next recording)\n"
    assert (data / SQLITE_FILENAME).exists()
    assert run("get", "recording.format", "--data", str(data)).stdout == "mp3\n"
    with Database.for_data_dir(data) as database:
        row = database.read(lambda s: s.scalars(select(Setting)).one())
    assert (row.name, row.value) == ("recording.format", "mp3")
    assert row.updated_by is not None and row.updated_by.startswith("cli")


def test_set_refuses_bad_values_with_exit_code_2(tmp_path: Path) -> None:
    result = run("set", "recording.mp3_bitrate", "20", "--data", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: recording.mp3_bitrate = '20' is not valid: expected one of 8, 16, 24, 32, 48\n"
    )
    result = run("set", "recording.fromat", "mp3", "--data", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown setting 'recording.fromat' (did you mean 'recording.format'?)" in result.stderr
    result = run("set", "recording.codec", "mp3", "--data", str(tmp_path))
    assert result.exit_code == 2
    assert "recording.codec = 'mp3' (new value) does not fit recording.format = 'ogg'" in (
        result.stderr
    )
    assert run("set", "recording.format", "--data", str(tmp_path)).exit_code == 2  # no value
    assert run("get", "recording.mp3_bitrate", "--data", str(tmp_path)).stdout == "32\n"


def test_several_pairs_are_saved_together(tmp_path: Path) -> None:
    result = run(
        "set",
        "recording.format",
        "wav",
        "recording.codec",
        "gsm",
        "recording.layout",
        "mono",
        "--data",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert run("get", "recording.codec", "--data", str(tmp_path)).stdout == "gsm\n"
    result = run("reset", "recording.layout", "--data", str(tmp_path))
    assert result.exit_code == 2
    assert "cannot reset recording.layout: recording.codec = 'gsm' (from database)" in (
        result.stderr
    )


def test_set_start_up_setting_writes_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text('[http]\nlisten = "127.0.0.1:9000"\n')
    result = run("set", "sip.listen", "0.0.0.0:5070", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"sip.listen = 0.0.0.0:5070  (written to {tmp_path / 'callvault.toml'}; "
        "takes effect at the next start)\n"
    )
    text = (tmp_path / "callvault.toml").read_text()
    assert text.startswith("# Maintained by `callvault settings set`")
    assert tomllib.loads(text) == {
        "http": {"listen": "127.0.0.1:9000"},
        "sip": {"listen": "0.0.0.0:5070"},
    }
    assert not (tmp_path / SQLITE_FILENAME).exists()  # start-up settings need no database
    assert run("get", "sip.listen", "--data", str(tmp_path)).stdout == "0.0.0.0:5070\n"
    result = run("reset", "sip.listen", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert run("get", "sip.listen", "--data", str(tmp_path)).stdout == "0.0.0.0:5060\n"
    assert run("get", "http.listen", "--data", str(tmp_path)).stdout == "127.0.0.1:9000\n"


def test_set_start_up_setting_warns_when_the_environment_overrides(tmp_path: Path) -> None:
    result = run(
        "set",
        "log.level",
        "debug",
        "--data",
        str(tmp_path),
        env={"CALLVAULT_LOG_LEVEL": "warning"},
    )
    assert result.exit_code == 0, result.output
    assert "note: CALLVAULT_LOG_LEVEL is set here and overrides the file" in result.stderr


def test_set_with_config_file(tmp_path: Path) -> None:
    config = tmp_path / "etc.toml"
    config.write_text("")
    result = run("set", "finalize.workers", "3", "--data", str(tmp_path), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert tomllib.loads(config.read_text()) == {"finalize": {"workers": 3}}
    assert not (tmp_path / "callvault.toml").exists()


def test_reset_runtime_setting(tmp_path: Path) -> None:
    run("set", "mixer.windows", "mon-fri 20:00-06:00", "--data", str(tmp_path))
    result = run("reset", "mixer.windows", "--data", str(tmp_path), env={})
    assert result.exit_code == 0, result.output
    assert result.stdout == "mixer.windows = always  (from default)\n"


def test_list_shows_every_setting_and_show_is_the_same(tmp_path: Path) -> None:
    run("set", "recording.timezone", "Europe/Warsaw", "--data", str(tmp_path))
    result = run("list", "--data", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["recording.timezone"] == {
        "name": "recording.timezone",
        "value": "Europe/Warsaw",
        "source": "database",
        "runtime": True,
        "default": "UTC",
        "help": "IANA time zone of the date and time in file names (e.g. Europe/Warsaw).",
    }
    assert rows["sip.listen"]["runtime"] is False
    assert rows["sip.listen"]["source"] == "default"
    text = run("list", "--data", str(tmp_path)).stdout
    assert "recording.timezone = Europe/Warsaw  [database; runtime]\n" in text
    assert "sip.listen = 0.0.0.0:5060  [default; start-up]\n" in text
    assert "rtp.address = (unset)  [default; start-up]\n" in text
    assert run("show", "--data", str(tmp_path)).stdout == text


def test_list_warns_when_settings_disagree(tmp_path: Path) -> None:
    run("set", "recording.codec", "vorbis", "--data", str(tmp_path))
    result = run("list", "--data", str(tmp_path), env={"CALLVAULT_RECORDING_FORMAT": "mp3"})
    assert result.exit_code == 0
    assert "recording.codec = vorbis  [database; runtime]" in result.stdout
    assert result.stderr.startswith(
        "warning: recording.codec = 'vorbis' (from database) does not fit recording.format = "
        "'mp3' (from CALLVAULT_RECORDING_FORMAT)"
    )


def test_get_unknown_setting(tmp_path: Path) -> None:
    result = run("get", "sip.lisen", "--data", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown setting 'sip.lisen' (did you mean 'sip.listen'?)" in result.stderr


def test_database_from_before_the_setting_table(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / SQLITE_FILENAME}", poolclass=NullPool)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
    finally:
        engine.dispose()
    assert run("get", "recording.layout", "--data", str(tmp_path)).stdout == "stereo\n"
    result = run("set", "recording.layout", "mono", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output  # set migrates the database first
    assert run("get", "recording.layout", "--data", str(tmp_path)).stdout == "mono\n"
