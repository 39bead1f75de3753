"""Packet-loss concealment: fill a lost stretch of speech with the speech before it.

After a stream is decoded onto its timeline, a lost packet is a gap between two
stretches of received audio. Silence there is what listeners call "choppy"; the
approach of ITU-T G.711 Appendix I is far less noticeable and works for any codec once
decoded (the codecs' own concealment needs their decoder state, which a recording
decoded after the fact does not replay): find the pitch period of the last 20 ms before
the gap by normalised autocorrelation, repeat the last period over the gap, keep full
level for the first 10 ms and fade to nothing by 60 ms (a longer gap is silence after
that: repeating a sound for longer invents speech), and cross-fade into the audio that
follows when it comes back within that time.

Never filled: the stretch before the first packet (nothing to repeat), stretches
inside a paused interval (PCI DSS: nothing may be heard there, not even a repeat) and
gaps that lead into one. Measured on G.711 speech with 5 % random loss: PESQ 3.39 with
silence, 3.80 with this (bench/quality.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["conceal_losses"]

Pcm = npt.NDArray[np.int16]
SampleRange = tuple[int, int]

_FULL_S = 0.010  # full level this long into the gap
_FADE_END_S = 0.060  # silent from here on
_HISTORY_S = 0.020  # what the pitch is measured on
_MIN_PITCH_HZ, _MAX_PITCH_HZ = 66.0, 200.0  # Appendix I's 40..120 samples at 8 kHz
_CROSSFADE_S = 0.004


def _pitch_period(history: npt.NDArray[np.float64], low: int, high: int) -> int:
    """The lag in [low, high] at which the last samples best match earlier ones."""
    window = len(history) - high
    target = history[-window:]
    # Row k is the window ``low + k`` samples back; one matrix product scores every lag.
    views = np.lib.stride_tricks.sliding_window_view(history[: len(history) - low], window)
    past = views[::-1][: high - low + 1]
    scores = past @ target / np.sqrt((past * past).sum(axis=1) * float(target @ target) + 1e-9)
    return low + int(np.argmax(scores))


def conceal_losses(
    pcm: Pcm,
    covered: Sequence[SampleRange],
    sample_rate: int,
    *,
    keep_silent: Sequence[SampleRange] = (),
) -> int:
    """Fill the gaps between ``covered`` ranges in place; returns how many were filled.

    ``covered`` (sorted, non-overlapping) says where received audio is; ``keep_silent``
    are ranges that must stay untouched silence (paused intervals).
    """
    low = max(1, round(sample_rate / _MAX_PITCH_HZ))
    high = max(low, round(sample_rate / _MIN_PITCH_HZ))
    history_needed = high + round(_HISTORY_S * sample_rate)
    full = round(_FULL_S * sample_rate)
    fade_end = round(_FADE_END_S * sample_rate)
    crossfade = round(_CROSSFADE_S * sample_rate)
    silent = sorted(keep_silent)
    filled = 0
    for (_, gap_start), (gap_end, next_end) in itertools.pairwise(covered):
        if gap_end <= gap_start or gap_start < history_needed:
            continue
        if any(a < gap_end + crossfade and b > gap_start for a, b in silent):
            continue
        history = pcm[gap_start - history_needed : gap_start].astype(np.float64)
        if not history.any():
            continue
        period = _pitch_period(history, low, high)
        cycle = history[-period:]
        length = min(gap_end - gap_start, fade_end)
        tail = min(crossfade, next_end - gap_end) if gap_end - gap_start < fade_end else 0
        steps = np.arange(length + tail)
        synth = cycle[steps % period]
        gain = np.clip(1.0 - (steps - full) / (fade_end - full), 0.0, 1.0)
        synth *= gain
        pcm[gap_start : gap_start + length] = np.rint(synth[:length]).astype(np.int16)
        if tail:
            weight = np.linspace(0.0, 1.0, tail, endpoint=False)
            received = pcm[gap_end : gap_end + tail].astype(np.float64)
            mixed = weight * received + (1.0 - weight) * synth[length:]
            pcm[gap_end : gap_end + tail] = np.rint(mixed).astype(np.int16)
        filled += 1
    return filled
