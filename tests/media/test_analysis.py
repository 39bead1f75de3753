"""Waveform peaks and talk intervals, on tones, noise and espeak-ng speech placed at known
offsets."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from callvault.media.analysis import (
    _running_min,
    frame_levels_db,
    silence_ratio,
    talk_intervals,
    waveform_peaks,
)
from callvault.media.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw

RATE = 8000
Pcm = npt.NDArray[np.int16]

SENTENCES = [
    ("en-us", "Good morning, I am calling about the invoice I received last week."),
    ("en-gb+f3", "I am sorry to hear that, let me open your account and check the charges."),
    ("en-us", "Thank you very much, I will wait for your message."),
]


@cache
def speech(voice: str, text: str) -> Pcm:
    with tempfile.TemporaryDirectory() as tmp:
        raw, narrow = Path(tmp) / "raw.wav", Path(tmp) / "8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", str(RATE), str(narrow)], check=True)
        pcm, rate = soundfile.read(narrow, dtype="int16")
    assert rate == RATE
    return np.asarray(pcm, dtype=np.int16)


def audible_extent(clip: Pcm) -> tuple[float, float]:
    """Where a clip is audibly non-silent (espeak pads its output with a little silence)."""
    loud = np.flatnonzero(np.abs(clip.astype(np.int32)) > 300)
    return loud[0] / RATE, (loud[-1] + 1) / RATE


def noise_db(level_dbfs: float, seconds: float, seed: int = 0) -> npt.NDArray[np.float64]:
    """White noise with the given RMS level (line hiss, or comfort noise when low)."""
    sigma = 32768 * 10 ** (level_dbfs / 20)
    return np.random.default_rng(seed).normal(0, sigma, round(seconds * RATE))


Spans = list[tuple[float, float]]


def place(background: npt.NDArray[np.float64], offsets: list[float]) -> tuple[Pcm, Spans]:
    """Mix the sentences into ``background`` at ``offsets``; return audio and the truth."""
    mixed = background.copy()
    truth: Spans = []
    for offset, (voice, text) in zip(offsets, SENTENCES, strict=True):
        clip = speech(voice, text)
        start = round(offset * RATE)
        mixed[start : start + len(clip)] += clip
        a, b = audible_extent(clip)
        truth.append((offset + a, offset + b))
    return np.clip(np.rint(mixed), -32768, 32767).astype(np.int16), truth


def assert_matches(found: Spans, truth: Spans, tolerance: float = 0.3) -> None:
    assert len(found) == len(truth), (found, truth)
    for (a, b), (ta, tb) in zip(found, truth, strict=True):
        assert a == pytest.approx(ta, abs=tolerance), (found, truth)
        assert b == pytest.approx(tb, abs=tolerance), (found, truth)


OFFSETS = [1.5, 10.0, 19.0]


def test_turns_in_digital_silence() -> None:
    pcm, truth = place(np.zeros(28 * RATE), OFFSETS)
    assert_matches(talk_intervals(pcm, RATE), truth)


@pytest.mark.parametrize(
    ("encode", "decode"), [(encode_ulaw, decode_ulaw), (encode_alaw, decode_alaw)]
)
def test_g711_idle_noise_counts_as_silence(
    encode: Callable[[Pcm], bytes], decode: Callable[[bytes], Pcm]
) -> None:
    # An idle G.711 channel toggles the lowest codes: a few units of noise around zero.
    pcm, truth = place(noise_db(-75, 28), OFFSETS)
    through_g711 = decode(encode(pcm))
    assert_matches(talk_intervals(through_g711, RATE), truth)


@pytest.mark.parametrize("hiss_dbfs", [-55.0, -45.0, -38.0])
def test_line_hiss_at_any_steady_level_counts_as_silence(hiss_dbfs: float) -> None:
    pcm, truth = place(noise_db(hiss_dbfs, 28), OFFSETS)
    assert_matches(talk_intervals(pcm, RATE), truth)


def test_comfort_noise_that_changes_level_between_turns() -> None:
    # Comfort noise regenerated at a new level after each turn (as an SBC's CN does).
    background = np.concatenate(
        [noise_db(-60, 9, seed=1), noise_db(-48, 9, seed=2), noise_db(-54, 10, seed=3)]
    )
    pcm, truth = place(background, OFFSETS)
    assert_matches(talk_intervals(pcm, RATE), truth)


def test_pauses_inside_a_turn_do_not_split_it() -> None:
    # One party says three sentences back to back with only espeak's own short pauses
    # (commas, sentence ends): one turn.
    turn = np.concatenate([speech(*s) for s in SENTENCES])
    pcm = np.concatenate([np.zeros(RATE, np.int16), turn, np.zeros(2 * RATE, np.int16)])
    (found,) = talk_intervals(pcm, RATE)
    a, b = audible_extent(turn)
    assert found == pytest.approx((1 + a, 1 + b), abs=0.3)


def test_talk_from_the_first_sample_in_hiss() -> None:
    # The floor must come from what follows when nothing precedes the talk.
    pcm, truth = place(noise_db(-45, 25), [0.0, 8.0, 16.0])
    assert_matches(talk_intervals(pcm, RATE), truth)


def test_a_click_is_not_talk() -> None:
    pcm = np.zeros(5 * RATE, np.int16)
    pcm[2 * RATE : 2 * RATE + 40] = 20000  # 5 ms pop on the line
    assert talk_intervals(pcm, RATE) == []


def test_silence_and_empty_input_have_no_talk() -> None:
    assert talk_intervals(np.zeros(3 * RATE, np.int16), RATE) == []
    assert talk_intervals(np.zeros(0, np.int16), RATE) == []


def test_talk_running_to_the_end_ends_at_the_end() -> None:
    clip = speech(*SENTENCES[0])
    pcm = np.concatenate([np.zeros(RATE, np.int16), clip[: len(clip) // 2]])
    (found,) = talk_intervals(pcm, RATE)
    assert found[1] == pytest.approx(len(pcm) / RATE, abs=0.05)
    assert found[1] <= len(pcm) / RATE


def test_wideband_speech() -> None:
    clip = speech(*SENTENCES[1])
    wide = np.repeat(clip, 2)  # crude 16 kHz: enough for an energy detector
    pcm = np.concatenate([np.zeros(32000, np.int16), wide, np.zeros(32000, np.int16)])
    (found,) = talk_intervals(pcm, 16000)
    a, b = audible_extent(clip)
    assert found == pytest.approx((2 + a, 2 + b), abs=0.3)


def test_talk_intervals_wants_one_channel() -> None:
    with pytest.raises(ValueError, match=r"^expected one channel \(1-D\), got shape \(2, 8\)$"):
        talk_intervals(np.zeros((2, 8), np.int16), RATE)


def test_silence_ratio() -> None:
    assert silence_ratio([(1.0, 3.0), (5.0, 6.0)], 10.0) == pytest.approx(0.7)
    assert silence_ratio([], 10.0) == 1.0
    assert silence_ratio([(0.0, 12.0)], 10.0) == 0.0
    assert silence_ratio([], 0.0) == 0.0


def test_frame_levels_db_of_a_full_scale_sine_is_minus_3() -> None:
    t = np.arange(RATE) / RATE
    sine = np.rint(32767 * np.sin(2 * np.pi * 400 * t)).astype(np.int16)
    levels = frame_levels_db(sine, RATE)
    assert len(levels) == 50
    assert levels == pytest.approx(np.full(50, -3.01), abs=0.02)
    assert frame_levels_db(np.zeros(170, np.int16), RATE) == pytest.approx([-200.0, -200.0])


# --- waveform peaks -----------------------------------------------------------------


def test_peaks_scale_from_minus_60_dbfs_to_full_scale() -> None:
    window = RATE // 5
    levels = [32767, -32768, 1037, 33, 0]  # 0, 0, -30, -60, silence (dBFS)
    pcm = np.zeros((1, window * len(levels)), np.int16)
    for i, value in enumerate(levels):
        pcm[0, i * window + 17] = value
    assert waveform_peaks(pcm, RATE).tolist() == [[255, 255, 128, 0, 0]]


def test_peaks_shape_and_last_partial_window() -> None:
    pcm = np.zeros((2, 8000 * 3 + 5), np.int16)
    pcm[0, -1] = 16384  # -6.02 dBFS in the 5-sample tail window: 229.4
    peaks = waveform_peaks(pcm, RATE)
    assert peaks.shape == (2, 16) and peaks.dtype == np.uint8
    assert peaks[0, -1] == 229 and peaks[0, :-1].max() == 0
    assert peaks[1].max() == 0


def test_peaks_of_nothing() -> None:
    assert waveform_peaks(np.zeros((2, 0), np.int16), RATE).shape == (2, 0)


def test_peaks_want_channels_first() -> None:
    with pytest.raises(ValueError, match=r"^expected audio shaped \(channels, n\)"):
        waveform_peaks(np.zeros(8, np.int16), RATE)


def brute_force_peaks(pcm: Pcm, rate: int, per_second: float) -> npt.NDArray[np.uint8]:
    window = rate / per_second
    points = int(np.ceil(pcm.shape[1] / window - 1e-9))
    out = np.zeros((pcm.shape[0], points), np.uint8)
    for c in range(pcm.shape[0]):
        for i in range(points):
            a, b = round(i * window), round((i + 1) * window)
            peak = int(np.abs(pcm[c, a:b].astype(np.int64)).max())
            db = 20 * np.log10(peak / 32768) if peak else -1000.0
            out[c, i] = int(np.clip(np.rint((db + 60) * 255 / 60), 0, 255))
    return out


@settings(max_examples=60, deadline=None)
@given(
    pcm=hnp.arrays(
        np.int16,
        st.tuples(st.integers(1, 3), st.integers(1, 3000)),
        elements=st.integers(-32768, 32767),
    ),
    rate=st.sampled_from([8000, 16000, 48000]),
    per_second=st.sampled_from([5.0, 7.5, 50.0, 300.0]),
)
def test_peaks_equal_a_per_window_computation(pcm: Pcm, rate: int, per_second: float) -> None:
    assert np.array_equal(
        waveform_peaks(pcm, rate, per_second), brute_force_peaks(pcm, rate, per_second)
    )


@settings(max_examples=100, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-100, 0)),
    width=st.integers(1, 250),
)
def test_running_min_equals_the_windowed_minimum(
    values: npt.NDArray[np.float64], width: int
) -> None:
    expected = [values[i : i + width].min() for i in range(len(values))]
    assert _running_min(values, width).tolist() == expected
