"""Every callvault setting, declared once: name, type, default and help.

Values come from (lowest to highest precedence) the defaults below, a TOML file
(``callvault.toml`` in the data directory, or ``--config``), ``CALLVAULT_*`` environment
variables (``sip.listen`` -> ``CALLVAULT_SIP_LISTEN``) and command-line flags. A bad
value is refused with a message naming the setting, the value and why
(``ConfigError``). The README's settings table is checked against ``SETTINGS`` by a test.

*Start-up* settings are read when a process starts. *Runtime* ones (recording format,
layout, file names, mixer windows...) are changed by administrators while the server
runs: values saved in the database (:mod:`callvault.runtime_settings`) win over all else.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callvault.recording.naming import DEFAULT_TEMPLATE, FilenameTemplate
from callvault.recording.windows import MixerWindows
from callvault.setting_values import (
    ConfigError,
    HostPort,
    PortRange,
    choice,
    non_negative_int,
    parse_address,
    parse_aor_globs,
    parse_bool,
    parse_host_port,
    parse_left_channel,
    parse_port_range,
    parse_timezone,
    positive_float,
    positive_int,
    whole_number,
)

__all__ = [
    "S3_STORAGE_CLASSES",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "ConfigError",
    "HostPort",
    "PortRange",
    "Setting",
    "Settings",
    "format_value",
    "load_settings",
    "parse_address",
    "parse_bool",
    "parse_host_port",
    "parse_port_range",
    "parse_timezone",
    "read_settings_file",
]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    runtime: bool = False

    @property
    def env_var(self) -> str:
        return "CALLVAULT_" + self.name.upper().replace(".", "_")


#: Storage classes whose objects can be read at once (so played); archive ones cannot.
S3_STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _s3_bucket(text: str) -> str:
    """An S3 bucket name (3-63 lowercase letters, digits, dots, hyphens), or empty."""
    text = text.strip()
    if text and (not _BUCKET.fullmatch(text) or ".." in text):
        raise ValueError(
            "expected an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
    return text


def _s3_prefix(text: str) -> str:
    """A key prefix: no leading ``/``, no ``..``; ends with ``/`` (added when missing)."""
    text = text.strip()
    if not text:
        return ""
    if text.startswith("/") or ".." in text.split("/") or "//" in text:
        raise ValueError("expected a key prefix such as callvault/ (no leading /, no .., no //)")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise ValueError("a key prefix has no control characters")
    return text if text.endswith("/") else text + "/"


def _s3_endpoint(text: str) -> str:
    """``http(s)://host[:port]``, or empty for AWS."""
    text = text.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError("expected an http:// or https:// URL such as https://s3.example.com")
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise ValueError("the URL's port is not a number 1-65535") from None
    return text.rstrip("/")


def _s3_region(text: str) -> str:
    text = text.strip()
    if text and not _REGION.fullmatch(text):
        raise ValueError("expected a region name such as eu-central-1")
    return text


def _kms_key_id(text: str) -> str:
    text = text.strip()
    if len(text.split()) > 1 or len(text) > 2048:
        raise ValueError("expected a KMS key id, alias or ARN (no spaces)")
    return text


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
        positive_int,
        "65535",
        "Largest SIP message accepted, in bytes; larger ones get 513 (UDP) or close the "
        "TCP connection after 513.",
    ),
    Setting(
        "sip.max_headers",
        positive_int,
        "200",
        "Most header lines in one SIP message; more get 400.",
    ),
    Setting(
        "sip.tcp_buffer",
        positive_int,
        "262144",
        "Most bytes buffered per TCP connection while a message is incomplete.",
    ),
    Setting(
        "sip.max_sessions",
        positive_int,
        "20000",
        "Most recording sessions at once; more get 503 with Retry-After.",
    ),
    Setting(
        "sip.session_expires",
        positive_int,
        "1800",
        "Session-Expires (RFC 4028) the recorder proposes when the SRC asks for timers.",
    ),
    Setting(
        "sip.min_se",
        positive_int,
        "90",
        "Smallest Session-Expires accepted (RFC 4028 Min-SE); smaller gets 422.",
    ),
    Setting(
        "rtp.inactivity_timeout",
        positive_float,
        "120",
        "Seconds without any RTP on a session's active streams before the session is "
        "ended (end_reason rtp_timeout). Paused (held) streams are not counted.",
    ),
    Setting(
        "capture.flush_interval",
        positive_float,
        "0.25",
        "Seconds between flushes of capture files to disk (bounds loss on a crash).",
    ),
    Setting(
        "capture.min_free_mb",
        non_negative_int,
        "256",
        "Refuse new sessions with 503 when the data directory's disk has less free space "
        "(MiB); sessions in progress keep recording.",
    ),
    Setting(
        "stats.persist_interval",
        positive_float,
        "5",
        "Seconds between saves of live stream statistics to the database.",
    ),
    Setting(
        "finalize.workers",
        positive_int,
        "1",
        "Worker processes that turn captures into recordings.",
    ),
    Setting("log.level", choice("debug", "info", "warning", "error"), "info", "Log level."),
    Setting(
        "log.format",
        choice("auto", "json", "text"),
        "auto",
        "Log format; auto = JSON when stderr is not a terminal.",
    ),
    Setting(
        "recording.enabled",
        parse_bool,
        "true",
        "false: new SIPREC sessions are answered but keep metadata only (no media ports, no "
        "recording); recordings already made are kept (REQUIREMENTS W12).",
        runtime=True,
    ),
    Setting(
        "recording.inbound",
        parse_bool,
        "true",
        "Record inbound calls: the caller (first participant in the metadata) is external "
        "and the callee internal (recording.internal_aors, platform users, extensions).",
        runtime=True,
    ),
    Setting(
        "recording.outbound",
        parse_bool,
        "true",
        "Record outbound calls: an internal caller calling an external party.",
        runtime=True,
    ),
    Setting(
        "recording.internal",
        parse_bool,
        "true",
        "Record internal calls: both the caller and the callee are internal (T2).",
        runtime=True,
    ),
    Setting(
        "recording.campaigns",
        parse_bool,
        "true",
        "Record automatic (dialler) campaign calls (T6). SIPREC metadata does not say "
        "whether a call came from a dialler, so this applies once the policy can see "
        "campaigns; today every call counts as a non-campaign call.",
        runtime=True,
    ),
    Setting(
        "recording.format",
        choice("ogg", "mp3", "wav"),
        "ogg",
        "Format of finished recordings: ogg, mp3 or wav (the codec is recording.codec).",
        runtime=True,
    ),
    Setting(
        "recording.codec",
        choice("auto", "opus", "vorbis", "mp3", "pcm", "alaw", "ulaw", "gsm"),
        "auto",
        "auto (ogg: opus, mp3: mp3, wav: pcm); opus or vorbis in ogg; mp3 in mp3; pcm, alaw, "
        "ulaw or gsm in wav (gsm only with recording.layout mono or separate).",
        runtime=True,
    ),
    Setting(
        "recording.opus_bitrate",
        whole_number(6, 64),
        "12",
        "Opus bit rate per channel, kbit/s (6-64); each channel is coded on its own, so one "
        "party never leaks into the other's channel. 12 keeps G.711 speech at PESQ 4.1 for "
        "about 170 KiB per minute of two parties talking.",
        runtime=True,
    ),
    Setting(
        "recording.opus_bitrate_wideband",
        whole_number(6, 64),
        "20",
        "Opus bit rate per channel, kbit/s (6-64), for wideband recordings (16 kHz: G.722, "
        "AMR-WB and Opus calls), which need more bits than narrowband for the same quality.",
        runtime=True,
    ),
    Setting(
        "recording.opus_complexity",
        whole_number(0, 10),
        "6",
        "Opus encoder effort, 0-10: 6 keeps PESQ >= 4.0 at 12 kbit/s and encodes at about "
        "170x real time per core; 1 runs at 400x but scores 3.6 (more bit rate buys it "
        "back).",
        runtime=True,
    ),
    Setting(
        "recording.mp3_bitrate",
        whole_number(8, 48, 8, 16, 24, 32, 48),
        "32",
        "MP3 bit rate, kbit/s: 8, 16, 24, 32 or 48. Below 32 speech sounds poor (measured on "
        "stereo calls: PESQ 2.0 at 16 kbit/s, 2.7 at 32, 3.2 at 48).",
        runtime=True,
    ),
    Setting(
        "recording.vorbis_quality",
        whole_number(0, 10),
        "4",
        "Vorbis quality, 0 (smallest) to 10 (best).",
        runtime=True,
    ),
    Setting(
        "recording.layout",
        choice("stereo", "mono", "conference", "separate"),
        "stereo",
        "stereo: one party per channel (recording.left_channel picks the left); mono: all "
        "parties mixed; conference: internal parties left, external right; separate: one "
        "file per participant.",
        runtime=True,
    ),
    Setting(
        "recording.left_channel",
        parse_left_channel,
        "internal",
        "Left channel in stereo: internal (the agent), caller, or aor:<glob> (the first "
        "party whose AOR matches, ignoring case, e.g. aor:sip:1???@pbx.example.com).",
        runtime=True,
    ),
    Setting(
        "recording.internal_aors",
        parse_aor_globs,
        "",
        "Comma-separated AOR globs of internal parties (agents), e.g. sip:*@pbx.example.com; "
        "platform users named in the metadata and short extensions are internal too.",
        runtime=True,
    ),
    Setting(
        "recording.filename_template",
        FilenameTemplate.parse,
        DEFAULT_TEMPLATE,
        "File name without extension: text and {YEAR} {MONTH} {DAY} {HOUR} {MINUTE} {SECOND} "
        "{PHONE_NUMBER} {ID} {NAME}; values are sanitised, a taken name gets -1, -2 (...).",
        runtime=True,
    ),
    Setting(
        "recording.timezone",
        parse_timezone,
        "UTC",
        "IANA time zone of the date and time in file names (e.g. Europe/Warsaw).",
        runtime=True,
    ),
    Setting(
        "recording.stitch",
        choice("never", "transfers"),
        "transfers",
        "transfers: a call with two or more segments also gets one recording of the whole "
        "call on its own timeline; never: segment recordings only.",
        runtime=True,
    ),
    Setting(
        "recording.user_pause",
        parse_bool,
        "false",
        "true: the users who may see a call in progress (its agent, a supervisor of the "
        "group) can pause and resume its recording from the call page or the API, e.g. "
        "while a customer reads out a card number; paused stretches are not captured and "
        "are marked in the recording (REQUIREMENTS T3). The SRC can always pause by "
        "re-INVITE.",
        runtime=True,
    ),
    Setting(
        "mixer.windows",
        MixerWindows.parse,
        "always",
        "When finalize jobs start: always (right after the call), or windows in "
        "mixer.timezone like mon-fri 20:00-06:00; sat,sun 00:00-24:00 (an end before the "
        "start crosses midnight); a job running when its window closes finishes.",
        runtime=True,
    ),
    Setting(
        "mixer.timezone",
        parse_timezone,
        "UTC",
        "IANA time zone of mixer.windows (e.g. Europe/Warsaw).",
        runtime=True,
    ),
    Setting(
        "web.share_max_days",
        whole_number(1, 3650),
        "30",
        "Longest a share link may stay valid, in days (1-3650); a link asked for without an "
        "expiry lasts 7 days, or this if it is shorter.",
        runtime=True,
    ),
    Setting(
        "encryption.enabled",
        parse_bool,
        "false",
        "Encrypt each finished recording to the active OpenPGP key (callvault keys set) as "
        "<name>.<ext>.gpg; the plaintext is removed once the ciphertext is on disk. Refused "
        "while no key is set.",
        runtime=True,
    ),
    Setting(
        "encryption.captures",
        choice("encrypt", "remove", "keep"),
        "encrypt",
        "With encryption.enabled, what becomes of a call's raw captures once its recordings "
        "(and its stitched recording) are made: encrypt (to the active key), remove, or keep "
        "(unencrypted). Either way they cannot be made into recordings again.",
        runtime=True,
    ),
    Setting(
        "storage.backend",
        choice("local", "s3"),
        "local",
        "Where finished recordings are kept: local (the data directory) or s3 (the bucket "
        "storage.s3.bucket: each recording is uploaded when it is ready, and its local copy "
        "removed once the bucket confirmed size and SHA-256). Existing recordings move with "
        "callvault storage move.",
        runtime=True,
    ),
    Setting(
        "storage.s3.bucket",
        _s3_bucket,
        "",
        "S3 bucket of the recordings (needed by storage.backend s3). Credentials come from "
        "boto3's usual chain: AWS_* environment variables, ~/.aws files, instance roles.",
        runtime=True,
    ),
    Setting(
        "storage.s3.prefix",
        _s3_prefix,
        "callvault/",
        "Key prefix in the bucket (empty: its root; a missing final / is added): a recording "
        "is stored as the prefix and its path, e.g. callvault/recordings/2023/11/14/x.ogg.",
        runtime=True,
    ),
    Setting(
        "storage.s3.endpoint_url",
        _s3_endpoint,
        "",
        "URL of an S3-compatible service, e.g. https://s3.example.com:9000 (addressed "
        "path-style); empty: AWS.",
        runtime=True,
    ),
    Setting(
        "storage.s3.region",
        _s3_region,
        "",
        "Region of the bucket, e.g. eu-central-1; empty: boto3's (AWS_DEFAULT_REGION, "
        "~/.aws/config).",
        runtime=True,
    ),
    Setting(
        "storage.s3.sse",
        choice("none", "AES256", "aws:kms"),
        "none",
        "Server-side encryption asked for each object: none (the bucket's default), AES256 "
        "(SSE-S3) or aws:kms (with storage.s3.kms_key_id, else the account's aws/s3 key).",
        runtime=True,
    ),
    Setting(
        "storage.s3.kms_key_id",
        _kms_key_id,
        "",
        "KMS key id, alias or ARN used with storage.s3.sse aws:kms (empty: the aws/s3 key).",
        runtime=True,
    ),
    Setting(
        "storage.s3.storage_class",
        choice(*S3_STORAGE_CLASSES),
        "STANDARD",
        "S3 storage class of new objects: " + ", ".join(S3_STORAGE_CLASSES) + ". Archive "
        "classes (GLACIER, DEEP_ARCHIVE) are refused: their objects cannot be played without "
        "a restore.",
        runtime=True,
    ),
    Setting(
        "retention.days",
        whole_number(0, 36500),
        "0",
        "Delete recordings this many days after their call ended (0-36500; 0 = never). A "
        "call's own retention (set by an administrator or supervisor) wins; a legal hold "
        "blocks deletion until it is released.",
        runtime=True,
    ),
    Setting(
        "retention.tier",
        choice("unlimited", "limited"),
        "unlimited",
        "unlimited: retention.days applies and administrators reach every recording; "
        "limited: every recording is deleted 30 days after its call (or after the switch "
        "to limited, if later) and only the users who took part reach it (REQUIREMENTS W2).",
        runtime=True,
    ),
    Setting(
        "retention.delete_metadata",
        parse_bool,
        "false",
        "true: once retention has deleted every recording of a call, the call itself "
        "(participants, streams, metadata) is deleted too; false keeps it.",
        runtime=True,
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def format_value(value: Any) -> str | None:
    """A parsed value as text that parses back to it (AOR globs joined by commas)."""
    if value is None:
        return None
    return ",".join(value) if isinstance(value, tuple) else str(value)


class Settings:
    """Resolved settings; ``settings["sip.listen"]`` gives the parsed value."""

    def __init__(
        self,
        values: Mapping[str, Any],
        sources: Mapping[str, str],
        config_file: Path | None = None,
    ) -> None:
        self._values = dict(values)
        self.sources = dict(sources)
        # The --config file given explicitly (None: DATA/callvault.toml, if any), so that
        # worker processes read the same file.
        self.config_file = config_file

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
        """Every value as text, as it would be written in the TOML file or the database."""
        return {k: format_value(v) for k, v in self._values.items()}

    def overlay(self, values: Mapping[str, Any], source: str) -> Settings:
        """A copy with ``values`` (already parsed) replacing these, from ``source``."""
        return Settings(
            {**self._values, **values},
            {**self.sources, **dict.fromkeys(values, source)},
            self.config_file,
        )


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
        for name, value in read_settings_file(path).items():
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
    sources = {name: source for name, (_, source) in raw.items()}
    return Settings(values, sources, config_file)


def read_settings_file(path: Path) -> dict[str, str]:
    """A TOML settings file as flat dotted names and text values."""
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
            elif isinstance(value, list):  # internal_aors = ["sip:1*@a", "sip:2*@b"]
                flat[name] = ",".join(map(str, value))
            else:
                flat[name] = str(value).lower() if isinstance(value, bool) else str(value)

    walk("", document)
    return flat
