"""Every callvault setting, declared once: name, type, default and help.

Values come from (lowest to highest precedence) the defaults below, a TOML file
(``callvault.toml`` in the data directory, or ``--config``), ``CALLVAULT_*`` environment
variables (``sip.listen`` -> ``CALLVAULT_SIP_LISTEN``) and command-line flags. A bad
value is refused with a message naming the setting, the value and why
(``ConfigError``). The README's settings table is checked against ``SETTINGS`` by a test.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting was given a value callvault cannot use."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    def __len__(self) -> int:
        return self.high - self.low + 1


def parse_host_port(text: str) -> HostPort:
    """``0.0.0.0:5060``, ``[::1]:5060`` or ``localhost:8080``."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError("expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError("expected HOST:PORT")
        if ":" in host:
            raise ValueError("an IPv6 address must be written in brackets: [ADDR]:PORT")
    return HostPort(host, _port(port_text))


def parse_port_range(text: str) -> PortRange:
    """``20000-39999``: an inclusive range of at least two ports, low even."""
    low_text, sep, high_text = text.strip().partition("-")
    if not sep:
        raise ValueError("expected LOW-HIGH")
    low, high = _port(low_text), _port(high_text)
    if low >= high:
        raise ValueError("the low port must be below the high port")
    if low < 1024:
        raise ValueError("RTP ports must be 1024 or above")
    return PortRange(low, high)


def parse_address(text: str) -> str:
    text = text.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("expected an IPv4 or IPv6 address") from None
    return text


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _port(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"port {text!r} is not a number")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    return port


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str | None
    help: str

    @property
    def env_var(self) -> str:
        return "CALLVAULT_" + self.name.upper().replace(".", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        str,
        "./callvault-data",
        "Directory holding the database, captures and recordings (--data).",
    ),
    Setting(
        "database.url",
        str,
        None,
        "SQLAlchemy URL; default: SQLite file callvault.db in the data directory. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    ),
    Setting(
        "sip.listen",
        parse_host_port,
        "0.0.0.0:5060",
        "Address and port for SIP over UDP and TCP (--sip).",
    ),
    Setting(
        "http.listen",
        parse_host_port,
        "127.0.0.1:8080",
        "Address and port of the HTTP server (--http).",
    ),
    Setting(
        "rtp.ports",
        parse_port_range,
        "20000-39999",
        "Inclusive UDP port range for RTP/RTCP; each stream takes an even/odd pair (--rtp-ports).",
    ),
    Setting(
        "rtp.address",
        parse_address,
        None,
        "Address RTP sockets bind to; default: the SIP listen address (--rtp-address).",
    ),
    Setting(
        "sip.advertise_address",
        parse_address,
        None,
        "Address written into SDP answers and Contact, for NAT; default: the RTP address, "
        "or the local address facing the SRC when bound to 0.0.0.0 (--advertise-address).",
    ),
    Setting(
        "sip.max_message_size",
        _positive_int,
        "65535",
        "Largest SIP message accepted, in bytes; larger ones get 513 (UDP) or close the "
        "TCP connection after 513.",
    ),
    Setting(
        "sip.max_headers",
        _positive_int,
        "200",
        "Most header lines in one SIP message; more get 400.",
    ),
    Setting(
        "sip.tcp_buffer",
        _positive_int,
        "262144",
        "Most bytes buffered per TCP connection while a message is incomplete.",
    ),
    Setting(
        "sip.max_sessions",
        _positive_int,
        "20000",
        "Most recording sessions at once; more get 503 with Retry-After.",
    ),
    Setting(
        "sip.session_expires",
        _positive_int,
        "1800",
        "Session-Expires (RFC 4028) the recorder proposes when the SRC asks for timers.",
    ),
    Setting(
        "sip.min_se",
        _positive_int,
        "90",
        "Smallest Session-Expires accepted (RFC 4028 Min-SE); smaller gets 422.",
    ),
    Setting(
        "rtp.inactivity_timeout",
        _positive_float,
        "120",
        "Seconds without any RTP on a session's active streams before the session is "
        "ended (end_reason rtp_timeout). Paused (held) streams are not counted.",
    ),
    Setting(
        "capture.flush_interval",
        _positive_float,
        "0.25",
        "Seconds between flushes of capture files to disk (bounds loss on a crash).",
    ),
    Setting(
        "capture.min_free_mb",
        _non_negative_int,
        "256",
        "Refuse new sessions with 503 when the data directory's disk has less free space "
        "(MiB); sessions in progress keep recording.",
    ),
    Setting(
        "stats.persist_interval",
        _positive_float,
        "5",
        "Seconds between saves of live stream statistics to the database.",
    ),
    Setting(
        "finalize.workers",
        _positive_int,
        "1",
        "Worker processes that turn captures into recordings.",
    ),
    Setting("log.level", _choice("debug", "info", "warning", "error"), "info", "Log level."),
    Setting(
        "log.format",
        _choice("auto", "json", "text"),
        "auto",
        "Log format; auto = JSON when stderr is not a terminal.",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


class Settings:
    """Resolved settings; ``settings["sip.listen"]`` gives the parsed value."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.sources = dict(sources)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @property
    def data_dir(self) -> Path:
        return Path(self._values["data_dir"])

    @property
    def database_url(self) -> str | None:
        url = self._values["database.url"]
        return str(url) if url else None

    def as_dict(self) -> dict[str, str | None]:
        return {k: (None if v is None else str(v)) for k, v in self._values.items()}


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting; raise ``ConfigError`` naming the first bad one."""
    env = os.environ if environ is None else environ
    raw: dict[str, tuple[str | None, str]] = {s.name: (s.default, "default") for s in SETTINGS}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data_dir = given.get("data_dir") or env.get("CALLVAULT_DATA_DIR") or "./callvault-data"
    path = config_file or Path(data_dir) / "callvault.toml"
    if config_file is not None and not config_file.exists():
        raise ConfigError(f"config file {config_file} does not exist")
    if path.exists():
        for name, value in _read_toml(path).items():
            raw[name] = (value, str(path))
    for setting in SETTINGS:
        if setting.env_var in env:
            raw[setting.name] = (env[setting.env_var], setting.env_var)
    for name, value in given.items():
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(f"unknown setting {name!r}")
        raw[name] = (value, "command line")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        text, source = raw[setting.name]
        if text is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.parse(str(text))
        except ValueError as exc:
            raise ConfigError(
                f"{setting.name} = {text!r} (from {source}) is not valid: {exc}"
            ) from None
    return Settings(values, {name: source for name, (_, source) in raw.items()})


def _read_toml(path: Path) -> dict[str, str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    flat: dict[str, str] = {}

    def walk(prefix: str, table: Mapping[str, Any]) -> None:
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Mapping):
                walk(name, value)
            elif name not in SETTINGS_BY_NAME:
                raise ConfigError(f"{path}: unknown setting {name!r}")
            else:
                flat[name] = str(value).lower() if isinstance(value, bool) else str(value)

    walk("", document)
    return flat
