"""Runtime settings in the database, cross-setting rules, and the settings file writer."""

from __future__ import annotations

import re
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import ConfigError, Settings, load_settings
from callvault.db import Database
from callvault.db.models import Setting as StoredSetting
from callvault.recording.windows import MixerWindows
from callvault.runtime_settings import (
    MAX_VALUE_LENGTH,
    effective_settings,
    recording_codec,
    reset_setting,
    set_setting,
    set_settings,
    write_settings_file,
)


def base_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"data_dir": str(tmp_path)}, environ=env)


def stored(database: Database) -> dict[str, tuple[str, str | None]]:
    rows = database.read(lambda s: list(s.scalars(select(StoredSetting))))
    return {row.name: (row.value, row.updated_by) for row in rows}


def test_without_saved_values_the_base_applies(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path)
    settings = database.read(lambda s: effective_settings(s, base))
    assert settings.as_dict() == base.as_dict()
    assert settings.sources == base.sources


def test_saved_value_wins_over_environment_and_file(database: Database, tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text(
        'recording.format = "wav"\nrecording.layout = "mono"\n'
    )
    base = base_settings(tmp_path, CALLVAULT_RECORDING_FORMAT="ogg")
    assert base.sources["recording.format"] == "CALLVAULT_RECORDING_FORMAT"
    value = database.write(
        lambda s: set_setting(s, "recording.format", "mp3", updated_by="admin", base=base)
    )
    assert value == "mp3"
    settings = database.read(lambda s: effective_settings(s, base))
    assert settings["recording.format"] == "mp3"
    assert settings.sources["recording.format"] == "database"
    assert settings["recording.layout"] == "mono"
    assert settings.sources["recording.layout"] == str(tmp_path / "callvault.toml")
    assert stored(database) == {"recording.format": ("mp3", "admin")}


def test_values_are_parsed_and_saving_again_updates(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path)
    windows = database.write(
        lambda s: set_setting(s, "mixer.windows", "Mon-Fri 20:00-06:00", updated_by="a", base=base)
    )
    assert windows == MixerWindows.parse("mon-fri 20:00-06:00")
    before = datetime.now(UTC)
    database.write(lambda s: set_setting(s, "mixer.windows", "always", updated_by="b", base=base))
    row = database.read(lambda s: s.get(StoredSetting, "mixer.windows"))
    assert (row.value, row.updated_by) == ("always", "b")
    assert row.updated_at >= before.replace(microsecond=0)
    assert database.read(lambda s: effective_settings(s, base))["mixer.windows"].always


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "recording.fromat",
            "mp3",
            "unknown setting 'recording.fromat' (did you mean 'recording.format'?)",
        ),
        ("no.such", "1", "unknown setting 'no.such'"),
        (
            "sip.listen",
            "0.0.0.0:5070",
            "sip.listen is a start-up setting: it is read when callvault starts and cannot be "
            "saved in the database (callvault settings set writes it into the settings file)",
        ),
        (
            "recording.mp3_bitrate",
            "20",
            "recording.mp3_bitrate = '20' is not valid: expected one of 8, 16, 24, 32, 48",
        ),
        (
            "recording.filename_template",
            "{ID}/{NAME}",
            "recording.filename_template = '{ID}/{NAME}' is not valid: the file name template "
            "contains '/' (a file name cannot contain any of / \\ : * ? \" < > |)",
        ),
        (
            "mixer.timezone",
            "Europe/Nowhere",
            "mixer.timezone = 'Europe/Nowhere' is not valid: expected an IANA time zone name "
            "such as UTC or Europe/Warsaw",
        ),
        (
            "recording.codec",
            "opus",
            "cannot set recording.codec = 'opus': recording.codec = 'opus' (new value) does "
            "not fit recording.format = 'wav' (from database): with recording.format wav, "
            "recording.codec must be auto or pcm or alaw or ulaw or gsm",
        ),
        (
            "recording.codec",
            "gsm",
            "cannot set recording.codec = 'gsm': recording.codec = 'gsm' (new value) needs "
            "recording.layout mono or separate (GSM 6.10 in WAV is mono only), not "
            "recording.layout = 'stereo' (from default)",
        ),
        (
            "recording.format",
            "mp3",
            "cannot set recording.format = 'mp3': recording.codec = 'alaw' (from database) "
            "does not fit recording.format = 'mp3' (new value): with recording.format mp3, "
            "recording.codec must be auto or mp3",
        ),
        (
            "recording.left_channel",
            "x" * (MAX_VALUE_LENGTH + 1),
            f"recording.left_channel is not valid: longer than {MAX_VALUE_LENGTH} characters",
        ),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    database: Database, tmp_path: Path, name: str, text: str, message: str
) -> None:
    base = base_settings(tmp_path)
    database.write(
        lambda s: set_settings(
            s, {"recording.format": "wav", "recording.codec": "alaw"}, updated_by="a", base=base
        )
    )
    with pytest.raises(ConfigError) as info:
        database.write(lambda s: set_setting(s, name, text, updated_by="b", base=base))
    assert str(info.value) == message
    assert stored(database) == {"recording.format": ("wav", "a"), "recording.codec": ("alaw", "a")}


def test_format_and_codec_change_together(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path)
    database.write(lambda s: set_setting(s, "recording.codec", "opus", updated_by="a", base=base))
    # Each change alone would not fit the other's current value; together they do.
    values = database.write(
        lambda s: set_settings(
            s,
            {"recording.format": "wav", "recording.codec": "gsm", "recording.layout": "separate"},
            updated_by="a",
            base=base,
        )
    )
    assert values == {
        "recording.format": "wav",
        "recording.codec": "gsm",
        "recording.layout": "separate",
    }
    settings = database.read(lambda s: effective_settings(s, base))
    assert recording_codec(settings) == "gsm"


def test_reset_goes_back_to_file_environment_or_default(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path, CALLVAULT_RECORDING_MP3_BITRATE="48")
    database.write(
        lambda s: set_setting(s, "recording.mp3_bitrate", "16", updated_by="a", base=base)
    )
    database.write(lambda s: set_setting(s, "recording.stitch", "never", updated_by="a", base=base))
    database.write(lambda s: reset_setting(s, "recording.mp3_bitrate", base=base))
    database.write(lambda s: reset_setting(s, "recording.stitch"))
    database.write(lambda s: reset_setting(s, "recording.stitch"))  # nothing saved: no error
    settings = database.read(lambda s: effective_settings(s, base))
    assert settings["recording.mp3_bitrate"] == 48
    assert settings.sources["recording.mp3_bitrate"] == "CALLVAULT_RECORDING_MP3_BITRATE"
    assert settings["recording.stitch"] == "transfers"
    assert stored(database) == {}


def test_reset_that_would_break_a_rule_is_refused(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path)
    database.write(
        lambda s: set_settings(
            s,
            {"recording.format": "wav", "recording.codec": "gsm", "recording.layout": "mono"},
            updated_by="a",
            base=base,
        )
    )
    with pytest.raises(ConfigError) as info:
        database.write(lambda s: reset_setting(s, "recording.layout", base=base))
    assert str(info.value).startswith(
        "cannot reset recording.layout: recording.codec = 'gsm' (from database) needs "
        "recording.layout mono or separate"
    )
    with pytest.raises(ConfigError, match=r"sip\.listen is a start-up setting"):
        database.write(lambda s: reset_setting(s, "sip.listen"))
    assert "recording.layout" in stored(database)


def test_rules_are_checked_when_loading(database: Database, tmp_path: Path) -> None:
    database.write(
        lambda s: set_setting(
            s, "recording.codec", "opus", updated_by="a", base=base_settings(tmp_path)
        )
    )
    # Someone later sets the format in the environment: the saved codec no longer fits.
    base = base_settings(tmp_path, CALLVAULT_RECORDING_FORMAT="mp3")
    with pytest.raises(ConfigError) as info:
        database.read(lambda s: effective_settings(s, base))
    assert str(info.value) == (
        "recording.codec = 'opus' (from database) does not fit recording.format = 'mp3' "
        "(from CALLVAULT_RECORDING_FORMAT): with recording.format mp3, recording.codec must "
        "be auto or mp3"
    )
    unchecked = database.read(lambda s: effective_settings(s, base, check=False))
    assert unchecked["recording.codec"] == "opus"
    # Fixing it is allowed although the current state breaks the rule.
    database.write(lambda s: set_setting(s, "recording.codec", "auto", updated_by="a", base=base))
    assert recording_codec(database.read(lambda s: effective_settings(s, base))) == "mp3"


def test_the_base_is_checked_too(database: Database, tmp_path: Path) -> None:
    base = base_settings(
        tmp_path, CALLVAULT_RECORDING_CODEC="vorbis", CALLVAULT_RECORDING_FORMAT="wav"
    )
    with pytest.raises(
        ConfigError, match=re.escape("recording.codec = 'vorbis' (from CALLVAULT_RECORDING_CODEC)")
    ):
        database.read(lambda s: effective_settings(s, base))


def test_rows_left_by_other_versions(database: Database, tmp_path: Path) -> None:
    base = base_settings(tmp_path)

    def add_rows(session: Session) -> None:
        session.add_all(
            [
                StoredSetting(name="recording.retired_option", value="x"),
                StoredSetting(name="sip.listen", value="0.0.0.0:1"),
                StoredSetting(name="recording.format", value="flac"),
            ]
        )

    database.write(add_rows)
    with pytest.raises(ConfigError) as info:
        database.read(lambda s: effective_settings(s, base))
    assert str(info.value) == (
        "recording.format = 'flac' (from database) is not valid: expected one of ogg, mp3, wav"
    )
    # The bad value can be replaced; unknown and start-up rows are ignored.
    database.write(lambda s: set_setting(s, "recording.format", "mp3", updated_by="a", base=base))
    settings = database.read(lambda s: effective_settings(s, base))
    assert settings["recording.format"] == "mp3"
    assert settings["sip.listen"] == base["sip.listen"]


def test_recording_codec_resolves_auto(tmp_path: Path) -> None:
    for fmt, codec in [("ogg", "opus"), ("mp3", "mp3"), ("wav", "pcm")]:
        settings = base_settings(tmp_path, CALLVAULT_RECORDING_FORMAT=fmt)
        assert recording_codec(settings) == codec
    settings = base_settings(tmp_path, CALLVAULT_RECORDING_CODEC="vorbis")
    assert recording_codec(settings) == "vorbis"


def test_settings_file_keeps_other_values(tmp_path: Path) -> None:
    path = tmp_path / "callvault.toml"
    path.write_text(
        '# my notes\n[sip]\nlisten = "127.0.0.1:5070"\nmax_headers = 50\n'
        '[recording]\nformat = "mp3"\n'
    )
    path.chmod(0o640)
    write_settings_file(path, {"http.listen": "0.0.0.0:8081", "sip.max_headers": None})
    text = path.read_text()
    assert text.splitlines() == [
        "# Maintained by `callvault settings set`: values set there are kept, comments are not.",
        'sip.listen = "127.0.0.1:5070"',
        'recording.format = "mp3"',
        'http.listen = "0.0.0.0:8081"',
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert str(settings["http.listen"]) == "0.0.0.0:8081"
    assert settings["sip.max_headers"] == 200
    assert [p.name for p in tmp_path.iterdir()] == ["callvault.toml"]  # no temporary left


def test_settings_file_values_round_trip_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "new" / "callvault.toml"
    awkward = 'postgresql+psycopg://u:p"\\w\x7f\tź@host/db'
    write_settings_file(
        path, {"database.url": awkward, "finalize.workers": "4", "capture.min_free_mb": "0"}
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # may hold a database password
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document == {
        "database": {"url": awkward},
        "finalize": {"workers": 4},
        "capture": {"min_free_mb": 0},
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sip.lisen": "0.0.0.0:5070"}, "unknown setting 'sip.lisen' (did you mean 'sip.listen'?)"),
        ({"sip.listen": "5070"}, "sip.listen = '5070' is not valid: expected HOST:PORT"),
        ({"data_dir": "/srv"}, "data_dir locates the settings file itself"),
    ],
)
def test_settings_file_refuses_bad_changes(
    tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    path = tmp_path / "callvault.toml"
    path.write_text('sip.listen = "127.0.0.1:5070"\n')
    with pytest.raises(ConfigError) as info:
        write_settings_file(path, changes)
    assert message in str(info.value)
    assert path.read_text() == 'sip.listen = "127.0.0.1:5070"\n'
