from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callvault.config import (
    SETTINGS,
    SETTINGS_BY_NAME,
    ConfigError,
    HostPort,
    PortRange,
    load_settings,
)
from callvault.recording.naming import DEFAULT_TEMPLATE, FilenameTemplate
from callvault.recording.windows import MixerWindows


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert settings["sip.listen"] == HostPort("0.0.0.0", 5060)
    assert settings["http.listen"] == HostPort("127.0.0.1", 8080)
    assert settings["rtp.ports"] == PortRange(20000, 39999)
    assert settings.data_dir == tmp_path
    assert settings.sources["sip.listen"] == "default"


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text(
        '[sip]\nlisten = "127.0.0.1:5070"\nmax_headers = 50\n[rtp]\nports = "30000-30999"\n'
    )
    env = {"CALLVAULT_SIP_LISTEN": "127.0.0.1:5080"}
    settings = load_settings({"data_dir": str(tmp_path), "rtp.ports": "31000-31099"}, environ=env)
    assert settings["sip.listen"] == HostPort("127.0.0.1", 5080)
    assert settings.sources["sip.listen"] == "CALLVAULT_SIP_LISTEN"
    assert settings["sip.max_headers"] == 50
    assert settings["rtp.ports"] == PortRange(31000, 31099)
    assert settings.sources["rtp.ports"] == "command line"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "rtp.ports",
            "30000-20000",
            "rtp.ports = '30000-20000' (from command line) is not "
            "valid: the low port must be below the high port",
        ),
        (
            "sip.listen",
            "5060",
            "sip.listen = '5060' (from command line) is not valid: expected HOST:PORT",
        ),
        ("sip.listen", "::1:5060", "an IPv6 address must be written in brackets"),
        ("sip.listen", "127.0.0.1:70000", "port 70000 is out of range 1-65535"),
        ("rtp.address", "example.com", "expected an IPv4 or IPv6 address"),
        ("log.level", "loud", "expected one of debug, info, warning, error"),
        ("sip.max_headers", "-3", "must be a positive integer"),
    ],
)
def test_bad_values_are_refused_with_reason(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"data_dir": str(tmp_path), name: value}, environ={})
    assert message in str(info.value)


def test_ipv6_listen(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path), "sip.listen": "[::1]:5060"}, environ={})
    assert settings["sip.listen"] == HostPort("::1", 5060)
    assert str(settings["sip.listen"]) == "[::1]:5060"


def test_unknown_setting_in_file(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text("[sip]\nlisen = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'sip\.lisen'"):
        load_settings({"data_dir": str(tmp_path)}, environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"data_dir": str(tmp_path)}, config_file=tmp_path / "nope.toml", environ={})


RUNTIME_SETTINGS = {
    "recording.format",
    "recording.codec",
    "recording.opus_bitrate",
    "recording.opus_bitrate_wideband",
    "recording.opus_complexity",
    "recording.mp3_bitrate",
    "recording.vorbis_quality",
    "recording.layout",
    "recording.left_channel",
    "recording.internal_aors",
    "recording.filename_template",
    "recording.timezone",
    "recording.stitch",
    "recording.user_pause",
    "mixer.windows",
    "mixer.timezone",
    "web.share_max_days",
    "encryption.captures",
    "encryption.enabled",
    "recording.campaigns",
    "recording.enabled",
    "recording.inbound",
    "recording.internal",
    "recording.outbound",
    "retention.days",
    "retention.delete_metadata",
    "retention.tier",
    "storage.backend",
    "storage.s3.bucket",
    "storage.s3.endpoint_url",
    "storage.s3.kms_key_id",
    "storage.s3.prefix",
    "storage.s3.region",
    "storage.s3.sse",
    "storage.s3.storage_class",
}


def test_runtime_settings_are_the_agreed_names() -> None:
    # Other issues (admin page, API, `callvault settings set`) rely on these names.
    assert {s.name for s in SETTINGS if s.runtime} == RUNTIME_SETTINGS
    assert not SETTINGS_BY_NAME["sip.listen"].runtime


def test_runtime_defaults(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert settings["recording.format"] == "ogg"
    assert settings["recording.codec"] == "auto"
    assert settings["recording.opus_bitrate"] == 12
    assert settings["recording.opus_complexity"] == 6
    assert settings["recording.opus_bitrate_wideband"] == 20
    assert settings["recording.mp3_bitrate"] == 32
    assert settings["recording.vorbis_quality"] == 4
    assert settings["recording.layout"] == "stereo"
    assert settings["recording.left_channel"] == "internal"
    assert settings["recording.internal_aors"] == ()
    assert settings["recording.filename_template"] == FilenameTemplate.parse(DEFAULT_TEMPLATE)
    assert settings["recording.timezone"] == ZoneInfo("UTC")
    assert settings["recording.stitch"] == "transfers"
    assert settings["mixer.windows"] == MixerWindows.parse("always")
    assert settings["mixer.timezone"] == ZoneInfo("UTC")
    assert settings.as_dict()["recording.filename_template"] == DEFAULT_TEMPLATE
    assert settings.as_dict()["recording.internal_aors"] == ""


def test_runtime_settings_come_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text(
        '[recording]\nformat = "wav"\ninternal_aors = ["sip:1*@pbx", "sip:2*@pbx"]\n'
        'timezone = "Europe/Warsaw"\n[mixer]\nwindows = "Mon-Fri 20:00-06:00"\n'
    )
    env = {"CALLVAULT_RECORDING_FORMAT": "mp3", "CALLVAULT_RECORDING_MP3_BITRATE": "16"}
    settings = load_settings({"data_dir": str(tmp_path)}, environ=env)
    assert settings["recording.format"] == "mp3"
    assert settings.sources["recording.format"] == "CALLVAULT_RECORDING_FORMAT"
    assert settings["recording.mp3_bitrate"] == 16
    assert settings["recording.internal_aors"] == ("sip:1*@pbx", "sip:2*@pbx")
    assert settings.as_dict()["recording.internal_aors"] == "sip:1*@pbx,sip:2*@pbx"
    assert settings["recording.timezone"] == ZoneInfo("Europe/Warsaw")
    assert settings.as_dict()["mixer.windows"] == "mon-fri 20:00-06:00"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "recording.format",
            "flac",
            "recording.format = 'flac' (from command line) is not "
            "valid: expected one of ogg, mp3, wav",
        ),
        ("recording.codec", "aac", "expected one of auto, opus, vorbis, mp3, pcm, alaw, ulaw, gsm"),
        ("recording.opus_bitrate", "5", "expected a whole number 6-64"),
        ("recording.opus_bitrate", "twelve", "expected a whole number 6-64"),
        ("recording.mp3_bitrate", "20", "expected one of 8, 16, 24, 32, 48"),
        ("recording.vorbis_quality", "11", "expected a whole number 0-10"),
        ("recording.layout", "quad", "expected one of stereo, mono, conference, separate"),
        ("recording.left_channel", "left", "expected internal, caller or aor:<glob>"),
        ("recording.left_channel", "aor:", "expected internal, caller or aor:<glob>"),
        ("recording.internal_aors", "sip:1*@pbx, sip:2 *@pbx", "an AOR has no spaces"),
        ("recording.filename_template", "{DATE}", "unknown variable {DATE} (allowed: {YEAR}"),
        ("recording.timezone", "Mars/Olympus_Mons", "expected an IANA time zone name"),
        ("recording.timezone", "localtime", "expected an IANA time zone name"),
        ("recording.timezone", "../../etc/passwd", "expected an IANA time zone name"),
        ("recording.stitch", "always", "expected one of never, transfers"),
        ("mixer.windows", "weekdays 20:00-06:00", "unknown days 'weekdays'"),
        ("mixer.timezone", "CEST", "expected an IANA time zone name"),
    ],
)
def test_bad_runtime_values_are_refused_with_reason(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"data_dir": str(tmp_path), name: value}, environ={})
    assert message in str(info.value)
    assert str(info.value).startswith(f"{name} = {value!r} (from command line) is not valid: ")


def test_left_channel_and_aor_globs_are_normalised(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "data_dir": str(tmp_path),
            "recording.left_channel": " aor: sip:1???@pbx.example.com ",
            "recording.internal_aors": " sip:1*@pbx ,, sip:2*@pbx ",
        },
        environ={},
    )
    assert settings["recording.left_channel"] == "aor:sip:1???@pbx.example.com"
    assert settings["recording.internal_aors"] == ("sip:1*@pbx", "sip:2*@pbx")


def test_overlay_replaces_values_and_sources(tmp_path: Path) -> None:
    base = load_settings({"data_dir": str(tmp_path)}, environ={})
    changed = base.overlay({"recording.format": "wav"}, "database")
    assert changed["recording.format"] == "wav"
    assert changed.sources["recording.format"] == "database"
    assert base["recording.format"] == "ogg"
    assert changed.sources["sip.listen"] == "default"
