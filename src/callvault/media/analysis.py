"""What the player draws for a recording: waveform peaks and each party's talk intervals.

Pure NumPy on int16 PCM, vectorised so that an hour of 8 kHz stereo takes a fraction of
a second. Nothing here reads files or knows about calls: the finalize job passes the
mixed channels (for peaks) or one party's own audio (for talk intervals) and stores the
results with the recording.

Talk detection is energy based: 20 ms frame levels against a noise floor that adapts to
each channel (a sliding minimum, so line hiss or comfort noise at any steady level
counts as silence), with an absolute floor under it (G.711 idle noise and digital
silence), and a hangover that bridges the gaps between syllables and words so one turn
stays one interval.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["PEAK_FLOOR_DB", "frame_levels_db", "silence_ratio", "talk_intervals", "waveform_peaks"]

Pcm = npt.NDArray[np.int16]
Levels = npt.NDArray[np.float64]

#: Level shown as 0 in the waveform; 255 is full scale (0 dBFS).
PEAK_FLOOR_DB = -60.0

_FULL_SCALE = 32768.0
# Blocks of this many samples are converted to float at a time, so the float copy of a
# long call never exists whole (an hour of one 8 kHz channel would be 230 MB as float64).
_BLOCK_SAMPLES = 1 << 20


def waveform_peaks(
    pcm: Pcm, sample_rate: int, points_per_second: float = 5.0
) -> npt.NDArray[np.uint8]:
    """Peak level per window and channel, shape (channels, points), on a dB scale.

    Window ``i`` covers samples ``[round(i * w), round((i + 1) * w))`` with ``w =
    sample_rate / points_per_second``; the last window may be shorter, and ``points =
    ceil(samples / w)``. The value is the window's peak |sample| in dBFS mapped linearly
    from ``PEAK_FLOOR_DB`` (-60 dBFS, and anything quieter, including digital silence
    and G.711 idle noise) to 0, up to 0 dBFS to 255: about 4.25 steps per dB, so loud
    and quiet speakers are both visible, which a linear scale would not show.
    """
    if pcm.ndim != 2:
        raise ValueError(f"expected audio shaped (channels, n), got shape {pcm.shape}")
    if sample_rate <= 0 or points_per_second <= 0:
        raise ValueError("sample rate and points per second must be positive")
    channels, length = pcm.shape
    window = sample_rate / points_per_second
    points = int(np.ceil(length / window - 1e-9)) if length else 0
    if points == 0:
        return np.zeros((channels, 0), dtype=np.uint8)
    starts = np.round(np.arange(points) * window).astype(np.int64)
    # Max and min on the int16 data itself (no int32 or abs copy of the whole call);
    # -32768 cannot be negated in int16, so the peak is formed on the small result.
    highs = np.maximum.reduceat(pcm, starts, axis=1).astype(np.int32)
    lows = np.minimum.reduceat(pcm, starts, axis=1).astype(np.int32)
    peak = np.maximum(highs, -lows).astype(np.float64)
    with np.errstate(divide="ignore"):
        level_db = 20.0 * np.log10(peak / _FULL_SCALE)
    scaled = (level_db - PEAK_FLOOR_DB) * (255.0 / -PEAK_FLOOR_DB)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def frame_levels_db(pcm_channel: Pcm, sample_rate: int, frame_s: float = 0.02) -> Levels:
    """RMS level of each ``frame_s`` frame in dBFS (a sine at full scale is -3 dBFS).

    The last frame is zero-padded; digital silence comes out at -200 dBFS.
    """
    frame = max(1, round(sample_rate * frame_s))
    length = len(pcm_channel)
    frames = -(-length // frame)
    power = np.empty(frames, dtype=np.float64)
    block = max(frame, _BLOCK_SAMPLES - _BLOCK_SAMPLES % frame)
    for start in range(0, length, block):
        chunk = pcm_channel[start : start + block].astype(np.float32)
        if len(chunk) % frame:
            chunk = np.concatenate([chunk, np.zeros(frame - len(chunk) % frame, np.float32)])
        rows = chunk.reshape(-1, frame)
        first = start // frame
        power[first : first + len(rows)] = np.einsum("ij,ij->i", rows, rows) / frame
    return 10.0 * np.log10(power / _FULL_SCALE**2 + 1e-20)


def talk_intervals(
    pcm_channel: Pcm,
    sample_rate: int,
    *,
    frame_s: float = 0.02,
    above_floor_db: float = 12.0,
    min_level_db: float = -50.0,
    floor_window_s: float = 5.0,
    hangover_s: float = 0.6,
    min_talk_s: float = 0.12,
) -> list[tuple[float, float]]:
    """Where this channel has speech, as (start, end) seconds from its first sample.

    A frame talks when its RMS level is ``above_floor_db`` over the local noise floor
    and above ``min_level_db`` dBFS. The noise floor comes from the quietest 20 ms
    frames within ``floor_window_s`` before and after (see ``_noise_floor``): speech
    pauses between words reach down to it, while hiss, hum and comfort noise are
    steady, so they set the floor and stay silence. ``min_level_db`` keeps G.711 idle
    noise (about -66 dBFS) and near-silent comfort noise out where the floor itself is
    that low. Gaps shorter than ``hangover_s`` (between syllables, words, breaths) are
    bridged, then runs shorter than ``min_talk_s`` (clicks, line pops) are dropped.
    """
    if pcm_channel.ndim != 1:
        raise ValueError(f"expected one channel (1-D), got shape {pcm_channel.shape}")
    if sample_rate <= 0:
        raise ValueError("sample rate must be positive")
    levels = frame_levels_db(pcm_channel, sample_rate, frame_s)
    if levels.size == 0:
        return []
    floor = _noise_floor(levels, frame_s, floor_window_s)
    active = (levels > floor + above_floor_db) & (levels > min_level_db)
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive frame index
    if starts.size == 0:
        return []
    # Bridge short gaps: a run keeps its start only when the gap before it is long.
    long_gap = (starts[1:] - ends[:-1]) * frame_s >= hangover_s
    starts = starts[np.concatenate(([True], long_gap))]
    ends = ends[np.concatenate((long_gap, [True]))]
    keep = (ends - starts) * frame_s >= min_talk_s
    duration = len(pcm_channel) / sample_rate
    return [
        (float(a * frame_s), min(float(b * frame_s), duration))
        for a, b in zip(starts[keep], ends[keep], strict=True)
    ]


def _noise_floor(levels: Levels, frame_s: float, window_s: float) -> Levels:
    """Per frame: the noise level, from the quietest frames up to ``window_s`` around it.

    The quietest frame looking back and the quietest looking ahead are both taken, and
    the louder of the two wins: inside speech both see a pause at the noise level, and
    where the noise steps up (comfort noise regenerated louder after a turn) the side
    after the step already shows the new level while the side before still shows the
    old one. The minimum over both sides would hold the old, lower floor for a whole
    window after the step, and the louder noise would count as talk. Within one window
    of either end of the recording only the side with a full window is used. A steady
    noise's quietest 20 ms frame is only 1 to 2 dB under its mean.
    """
    count = len(levels)
    width = max(1, min(count, round(window_s / frame_s)))
    ahead = _running_min(levels, width)
    behind = _running_min(levels[::-1], width)[::-1]
    index = np.arange(count)
    full_behind = index >= width - 1
    full_ahead = index + width <= count
    return np.where(
        full_behind & full_ahead,
        np.maximum(behind, ahead),
        np.where(full_ahead, ahead, np.where(full_behind, behind, np.minimum(behind, ahead))),
    )


def _running_min(values: Levels, width: int) -> Levels:
    """``min(values[i : i + width])`` for every i, in O(n) (van Herk / Gil-Werman).

    A window starting at i covers the end of i's block of ``width`` and the start of the
    next one: the block-wise suffix minimum at i and prefix minimum at i + width - 1.
    """
    count = len(values)
    blocks = -(-(count + width) // width)
    padded = np.full(blocks * width, np.inf)
    padded[:count] = values
    shaped = padded.reshape(blocks, width)
    prefix = np.minimum.accumulate(shaped, axis=1).ravel()
    suffix = np.minimum.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].ravel()
    index = np.arange(count)
    return np.minimum(suffix[index], prefix[index + width - 1])


def silence_ratio(intervals: list[tuple[float, float]], duration_s: float) -> float:
    """Share of ``duration_s`` not covered by ``intervals`` (0.0 for an empty recording)."""
    if duration_s <= 0:
        return 0.0
    talk = sum(max(0.0, min(b, duration_s) - max(a, 0.0)) for a, b in intervals)
    return max(0.0, 1.0 - talk / duration_s)
