from __future__ import annotations

from pathlib import Path

import pytest

from callvault.config import ConfigError, HostPort, PortRange, load_settings


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
