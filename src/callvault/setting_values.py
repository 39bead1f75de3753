"""The value types of settings and the parsers that turn their text into them.

Each parser takes the text of a value (from a file, the environment, the command line
or the database) and returns the parsed value or raises ``ValueError`` with what is
allowed; :mod:`callvault.config` names the setting and the source around that message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


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


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


def whole_number(low: int, high: int, *only: int) -> Callable[[str], int]:
    allowed = f"one of {', '.join(map(str, only))}" if only else f"a whole number {low}-{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if not low <= value <= high or (only and value not in only):
            raise ValueError(f"expected {allowed}")
        return value

    return parse


@cache
def _time_zones() -> frozenset[str]:
    # Listing the zones walks tzdata's directory: once per process is enough. Debian lists
    # "localtime", a link to whatever /etc/localtime is: a name must mean the same anywhere.
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


def parse_timezone(text: str) -> ZoneInfo:
    """An IANA zone name (``Europe/Warsaw``, ``UTC``); files like ``localtime`` are refused."""
    if text.strip() not in _time_zones():
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Warsaw")
    return ZoneInfo(text.strip())


def parse_left_channel(text: str) -> str:
    rule = text.strip()
    if rule in ("internal", "caller"):
        return rule
    if rule.startswith("aor:") and rule[4:].strip():
        return "aor:" + rule[4:].strip()
    raise ValueError("expected internal, caller or aor:<glob> (e.g. aor:sip:1???@pbx.example.com)")


def parse_aor_globs(text: str) -> tuple[str, ...]:
    """Comma-separated globs (``Settings.as_dict`` joins them back with commas)."""
    globs = tuple(glob.strip() for glob in text.split(",") if glob.strip())
    if any(len(glob.split()) > 1 for glob in globs):
        raise ValueError("expected AOR globs separated by commas; an AOR has no spaces")
    return globs
