"""Packet-loss concealment fills short losses from the speech before them, and only those."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from callvault.media.conceal import conceal_losses

RATE = 8000


def voiced(seconds: float, pitch: float = 125.0) -> npt.NDArray[np.int16]:
    """A steady vowel-like sound: a pitch and two harmonics."""
    t = np.arange(round(seconds * RATE)) / RATE
    wave = sum(a * np.sin(2 * np.pi * pitch * k * t) for k, a in ((1, 5000), (2, 2500), (3, 1200)))
    return np.rint(wave).astype(np.int16)


def lose(pcm: npt.NDArray[np.int16], a: int, b: int) -> npt.NDArray[np.int16]:
    out = pcm.copy()
    out[a:b] = 0
    return out


def error(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def test_a_lost_packet_is_filled_with_the_pitch_before_it() -> None:
    source = voiced(1.0)
    damaged = lose(source, 4000, 4160)  # one 20 ms packet
    filled = conceal_losses(damaged, [(0, 4000), (4160, 8000)], RATE)
    assert filled == 1
    # Close to what was lost (the sound is periodic), far better than silence.
    assert error(damaged[4000:4160], source[4000:4160]) < 0.1 * error(
        np.zeros(160), source[4000:4160]
    )
    # Received audio is untouched but for the short cross-fade after the gap.
    assert np.array_equal(damaged[:4000], source[:4000])
    assert np.array_equal(damaged[4160 + 32 :], source[4160 + 32 :])


def test_a_long_loss_fades_to_silence_after_60_ms() -> None:
    source = voiced(1.0)
    damaged = lose(source, 4000, 6000)  # 250 ms lost
    conceal_losses(damaged, [(0, 4000), (6000, 8000)], RATE)
    level = np.abs(damaged[4000:4080].astype(np.float64)).max()
    assert level > 4000  # full level for the first 10 ms
    assert np.abs(damaged[4320:4480]).max() < level / 2  # fading after 40 ms
    assert not damaged[4480:6000].any()  # from 60 ms on: silence, nothing invented
    assert np.array_equal(damaged[6000:], source[6000:])


@pytest.mark.parametrize(
    ("covered", "keep_silent"),
    [
        ([(800, 8000)], []),  # before the first packet: nothing to repeat
        ([(0, 4000), (4160, 8000)], [(4000, 4160)]),  # paused: stays silent (PCI DSS)
        ([(0, 4000), (4160, 8000)], [(4100, 6000)]),  # a pause starts inside the gap
        ([(0, 100), (260, 8000)], []),  # too little history to find a pitch
    ],
)
def test_what_is_never_filled(
    covered: list[tuple[int, int]], keep_silent: list[tuple[int, int]]
) -> None:
    source = voiced(1.0)
    damaged = source.copy()
    for (_, a), (b, _) in itertools.pairwise(covered):
        damaged[a:b] = 0
    damaged[: covered[0][0]] = 0
    before = damaged.copy()
    assert conceal_losses(damaged, covered, RATE, keep_silent=keep_silent) == 0
    assert np.array_equal(damaged, before)


def test_no_click_where_the_audio_comes_back() -> None:
    source = voiced(1.0)
    damaged = lose(source, 4000, 4320)  # 40 ms: the fill is still audible at the end
    conceal_losses(damaged, [(0, 4000), (4320, 8000)], RATE)
    steps = np.abs(np.diff(damaged[3990:4400].astype(np.float64)))
    assert steps.max() < 1.5 * np.abs(np.diff(source.astype(np.float64))).max()


def test_sixteen_khz_uses_the_same_times() -> None:
    t = np.arange(16000) / 16000
    source = np.rint(6000 * np.sin(2 * np.pi * 150 * t)).astype(np.int16)
    damaged = lose(source, 8000, 8320)
    assert conceal_losses(damaged, [(0, 8000), (8320, 16000)], 16000) == 1
    assert error(damaged[8000:8320], source[8000:8320]) < 0.2 * float(np.abs(source).mean())
