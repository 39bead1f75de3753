"""Storage planning (REQUIREMENTS A7): how many hours of calls fit in a disk or a bucket.

From *measured* KiB per minute of finished recordings, per codec and bit rate (or
quality), for two figures: a typical call where the parties take turns, and the worst
case where both talk all the time. The source system's rule of thumb (1 MB per 5
minutes; 250 GB ≈ 19,000 h) is given beside it. Pure functions of the settings: the web
layer reads them and decides which format is asked about.

Sizes are decimal, as disks are sold and buckets billed: 1 GB = 10^9 bytes, 1 MB = 10^6
bytes; KiB = 1024 bytes as the benchmarks print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callvault.config import SETTINGS_BY_NAME, ConfigError, Settings
from callvault.runtime_settings import CODECS_BY_FORMAT, parse_value

__all__ = [
    "KIB_PER_MINUTE",
    "RULE_OF_THUMB_MB_PER_MINUTE",
    "Measured",
    "PlanError",
    "estimate_for",
    "kib_per_minute",
    "storage_estimate",
]

# Where each figure comes from (all 2026-11-30, a 2-core AMD EPYC VM):
# F: bench/formats.py (bench/out/formats-20261130-184309.md; README, Performance,
#    "Formats"): the encoder alone on two espeak-ng parties at 8 kHz, stereo, agent left.
# Q: bench/quality.py (bench/out/quality-20261130-183933.md; README, Performance,
#    "Recording quality"): a real SIPREC call, G.711 in, through `callvault serve`; the
#    default format's figures are the recorder's own, so they win over F's 164 / 94.
# S: bench/formats.py's material and Bench.size, sizes only, run for this table for the
#    settings F does not list (Opus 6, 20, 32, 40, 48 and 64 kbit/s; Vorbis q1, q3, q5-q10).
#    The same run gave F's figures again (Opus 8: 114 / 70; 24: 311 / 162).
F = "bench/formats.py, 2026-11-30"
Q = "bench/quality.py (a real call through callvault serve), 2026-11-30"
S = "bench/formats.py material, sizes measured for this table, 2026-11-30"

Measured = tuple[float, float, str]  # KiB/min both talking, KiB/min turns, source
#: Per codec: {bit rate in kbit/s (Opus per channel, MP3), Vorbis quality, or None for
#: the fixed-rate WAV codecs: measured figures}. Narrowband (G.711) two-party calls.
KIB_PER_MINUTE: dict[str, dict[int | None, Measured]] = {
    "opus": {
        6: (88, 58, S),
        8: (114, 70, F),
        10: (139, 82, F),
        12: (169, 92, Q),
        16: (213, 117, F),
        20: (263, 140, S),
        24: (311, 162, F),
        32: (406, 206, S),
        40: (503, 252, S),
        # libopus spends no more on 8 kHz audio past about 48 kbit/s per channel:
        # 56 kbit/s measured 592 / 293 too.
        48: (591, 293, S),
        64: (591, 293, S),
    },
    "mp3": {
        8: (60, 59, F),
        16: (119, 118, F),
        24: (178, 177, F),
        32: (237, 235, F),
        48: (355, 353, F),
    },
    "vorbis": {
        0: (163, 110, F),
        1: (197, 132, S),
        2: (235, 155, F),
        3: (276, 180, S),
        4: (320, 207, F),
        5: (365, 235, S),
        6: (409, 264, S),
        7: (453, 293, S),
        8: (495, 322, S),
        9: (536, 350, S),
        10: (575, 378, S),
    },
    "pcm": {None: (1875, 1875, F)},
    "alaw": {None: (938, 938, F)},
    "ulaw": {None: (938, 938, F)},
    "gsm": {None: (191, 191, F)},  # mono only: one file per party, both counted
}
#: The source system's rule of thumb: 1 MB per 5 minutes (and its "250 GB ≈ 19,000 h").
RULE_OF_THUMB_MB_PER_MINUTE = 1 / 5
RULE_OF_THUMB_TEXT = (
    "the source system's rule of thumb, 1 MB per 5 minutes (it quotes 250 GB ≈ 19,000 h)"
)
_LABELS = {
    "opus": "Ogg Opus {} kbit/s per channel",
    "mp3": "MP3 {} kbit/s",
    "vorbis": "Ogg Vorbis quality {}",
    "pcm": "WAV PCM 16-bit",
    "alaw": "WAV G.711 A-law",
    "ulaw": "WAV G.711 µ-law",
    "gsm": "WAV GSM 6.10 (one mono file per party)",
}
_NOTES = (
    "Two-party narrowband (G.711) calls recorded in stereo. Wideband calls (G.722, "
    "Opus) take recording.opus_bitrate_wideband: measured 282 / 199 KiB/min at 20 kbit/s "
    "(bench/quality.py); WAV PCM doubles to 3750. Other layouts were not measured."
)


class PlanError(ConfigError):
    """A format asked about that callvault would not record; ``setting`` names it."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def kib_per_minute(codec: str, setting: int | None) -> tuple[float, float, bool, str]:
    """(both talking, turns, measured?, basis) for ``codec`` at ``setting``.

    A setting between two measured ones is interpolated linearly: file size grows in
    step with the bit rate (Opus 36 kbit/s measured 454 KiB/min where the line from 32
    to 40 gives 455), and Vorbis size with its quality (each step measured anyway).
    """
    table = KIB_PER_MINUTE[codec]
    if None in table:
        both, turns, source = table[None]
        return both, turns, True, f"measured: {source}"
    if setting in table:
        both, turns, source = table[setting]
        return both, turns, True, f"measured: {source}"
    assert setting is not None
    points = sorted(key for key in table if key is not None)
    below = max((p for p in points if p < setting), default=points[0])
    above = min((p for p in points if p > setting), default=points[-1])
    if below == above:  # outside what was measured: the nearest measured figure
        both, turns, _ = table[below]
        return both, turns, False, f"not measured: the figure for {below}, the nearest measured"
    share = (setting - below) / (above - below)
    low, high = table[below], table[above]
    both = low[0] + share * (high[0] - low[0])
    turns = low[1] + share * (high[1] - low[1])
    return both, turns, False, f"interpolated between the measured {below} and {above}"


def _hours(size_bytes: float, kib: float) -> int:
    return round(size_bytes / (kib * 1024) / 60)


def storage_estimate(
    size_gb: float,
    fmt: str,
    codec: str,
    *,
    opus_bitrate: int,
    mp3_bitrate: int,
    vorbis_quality: int,
) -> dict[str, Any]:
    """Hours of calls in ``size_gb`` for ``codec`` in ``fmt``, with the rule of thumb."""
    setting = {"opus": opus_bitrate, "mp3": mp3_bitrate, "vorbis": vorbis_quality}.get(codec)
    both, turns, measured, basis = kib_per_minute(codec, setting)
    size_bytes = size_gb * 1e9
    rule_kib = RULE_OF_THUMB_MB_PER_MINUTE * 1e6 / 1024
    return {
        "size_gb": size_gb,
        "format": fmt,
        "codec": codec,
        "setting": setting,
        "label": _LABELS[codec].format(setting),
        "kib_per_minute": {"turns": round(turns, 1), "both_talking": round(both, 1)},
        "hours": {"turns": _hours(size_bytes, turns), "both_talking": _hours(size_bytes, both)},
        "measured": measured,
        "basis": basis,
        "rule_of_thumb": {
            "text": RULE_OF_THUMB_TEXT,
            "kib_per_minute": round(rule_kib, 1),
            "hours": _hours(size_bytes, rule_kib),
        },
        "notes": _NOTES,
    }


def estimate_for(
    settings: Settings, size_gb: float, given: Mapping[str, str | None]
) -> dict[str, Any]:
    """:func:`storage_estimate` for the recording settings in ``settings``, with the
    ``given`` ones (``recording.*`` names and texts; empty ones ignored) in their place."""
    chosen: dict[str, Any] = {}
    for name, text in given.items():
        if text:
            try:
                chosen[name] = parse_value(SETTINGS_BY_NAME[name], text)
            except ConfigError as exc:
                raise PlanError(str(exc), name) from None
    if "recording.format" in chosen and "recording.codec" not in chosen:
        chosen["recording.codec"] = "auto"  # the saved codec may not fit another format
    settings = settings.overlay(chosen, "asked")
    fmt, wanted = settings["recording.format"], settings["recording.codec"]
    allowed = CODECS_BY_FORMAT[fmt]
    codec = allowed[0] if wanted == "auto" else wanted
    if codec not in allowed:
        raise PlanError(
            f"recording.codec {codec} does not fit recording.format {fmt}: use auto or "
            f"{' or '.join(allowed)}",
            "recording.codec",
        )
    return storage_estimate(
        size_gb,
        fmt,
        codec,
        opus_bitrate=settings["recording.opus_bitrate"],
        mp3_bitrate=settings["recording.mp3_bitrate"],
        vorbis_quality=settings["recording.vorbis_quality"],
    )
