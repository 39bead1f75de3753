"""The sender-clock fit (``drift``) and what it buys: long calls that stay aligned."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt
import pytest

from callvault.media.chunks import MAX_CLOCK_ERROR
from callvault.media.drift import MAX_DRIFT, STEP, clock_steps, fit_clock
from callvault.media.g711 import UlawDecoder, encode_ulaw
from callvault.media.timeline import RenderedStream, place_stream, render_stream
from tests.media.synth import FRAME, RATE, network_packets, true_time

T0 = 1_700_000_000.0


def sender(
    seconds: float, ppm: float, rng: np.random.Generator, *, jitter: float = 0.03
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Media time and arrival of a sender's 20 ms packets, clock ``ppm`` fast."""
    i = np.arange(round(seconds * 50))
    media = i * 0.02
    arrival = true_time(i * FRAME, t0=T0, ppm=ppm) + rng.uniform(0, jitter, len(i))
    return media, arrival


@pytest.mark.parametrize("ppm", [-100.0, -80.0, -5.0, 0.0, 30.0, 80.0, 100.0])
def test_fit_recovers_the_sender_clock(ppm: float) -> None:
    media, arrival = sender(1200, ppm, np.random.default_rng(1))
    fit = fit_clock(media, arrival)
    assert fit.sender_ppm == pytest.approx(ppm, abs=0.5)
    assert fit.anchor == pytest.approx(T0, abs=0.001)
    last = float(true_time((len(media) - 1) * FRAME, t0=T0, ppm=ppm))
    assert fit.wall(float(media[-1])) == pytest.approx(last, abs=0.001)


def test_short_runs_have_no_drift_and_the_fastest_packet_anchors() -> None:
    rng = np.random.default_rng(2)
    media, arrival = sender(30, 100, rng, jitter=0)
    arrival += rng.uniform(0.005, 0.03, len(arrival))
    arrival[7] -= 0.005 + 0.001  # this one crossed faster than any other
    fit = fit_clock(media, arrival)
    assert fit.drift == 0.0 and fit.sender_ppm == 0.0
    assert fit.anchor == pytest.approx(arrival[7] - media[7], abs=1e-6)


@pytest.mark.parametrize(("before", "after"), [(0.0, 0.2), (0.2, 0.0)])
def test_a_network_path_change_does_not_tilt_the_line(before: float, after: float) -> None:
    """The delay steps by 200 ms half-way: the fit still finds the sender's clock."""
    media, arrival = sender(3600, 60, np.random.default_rng(3))
    arrival += np.where(media < 1800, before, after)
    fit = fit_clock(media, arrival)
    assert fit.sender_ppm == pytest.approx(60, abs=1)
    # The faster path sets the anchor, before or after the change.
    assert fit.anchor == pytest.approx(T0, abs=0.002)


def test_a_filling_queue_is_not_taken_for_a_clock() -> None:
    media, arrival = sender(600, 0, np.random.default_rng(4))
    arrival += media * 0.004  # the queue grows by 4 ms a second
    assert fit_clock(media, arrival).drift == MAX_DRIFT


def test_fit_needs_a_packet() -> None:
    empty = np.zeros(0)
    with pytest.raises(ValueError, match="fit_clock needs at least one packet"):
        fit_clock(empty, empty)


def test_clock_steps_need_a_step_of_the_floor() -> None:
    media, arrival = sender(20, 0, np.random.default_rng(5), jitter=0.02)
    arrival[500:] -= 0.3  # the sender's timestamps jumped forward 300 ms at packet 500
    arrival[200] += 0.5  # one late packet is not a step
    arrival[800:] += STEP / 2  # a small step is not one either
    candidates = np.array([200, 201, 500, 800], dtype=np.intp)
    assert clock_steps(media, arrival, candidates).tolist() == [500]
    assert clock_steps(media, arrival, candidates[:0]).tolist() == []


# A whole call: G.711 silence with a click every 60 s, placed where the sender made it.

CLICK = np.zeros(FRAME, dtype=np.int16)
CLICK[37] = 20000


def clicks_call(
    seconds: int, first_click: int, ppm: float, rng: np.random.Generator
) -> tuple[RenderedStream, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Render one stream; return it, the true times of the clicks that arrived, and
    the times they were found at."""
    frames = seconds * 50
    silence, click = encode_ulaw(np.zeros(FRAME, dtype=np.int16)), encode_ulaw(CLICK)
    payloads = [silence] * frames
    clicks = np.arange(first_click * 50, frames, 60 * 50)
    for frame in clicks:
        payloads[frame] = click
    packets, received = network_packets(
        payloads, t0=T0, rng=rng, ppm=ppm, jitter=0.03, spikes=0.005, loss=0.01
    )
    placement = place_stream(packets, clock_rates={0: 8000})
    rendered = render_stream(
        placement, {0: UlawDecoder}, sample_rate=RATE, start=T0, end=T0 + seconds + 1
    )
    arrived = clicks[received[clicks]]
    truth = true_time(arrived * FRAME + 37, t0=T0, ppm=ppm)
    found = T0 + np.flatnonzero(rendered.pcm) / RATE
    assert len(found) == len(truth)  # every click that arrived, exactly once
    return rendered, truth, found


def test_two_hour_call_with_drifting_clocks_stays_within_20_ms() -> None:
    """Caller +80 ppm, callee -80 ppm: uncorrected they would part by 1.15 s."""
    rng = np.random.default_rng(2026)
    caller, caller_truth, caller_found = clicks_call(7200, 0, 80.0, rng)
    callee, callee_truth, callee_found = clicks_call(7200, 30, -80.0, rng)
    assert len(caller_truth) > 110 and len(callee_truth) > 110
    assert np.abs(caller_found - caller_truth).max() < 0.020
    assert np.abs(callee_found - callee_truth).max() < 0.020
    # Both stay within the cut limit plus a sample of the truth, so the channels agree.
    worst = max(
        np.abs(caller_found - caller_truth).max(), np.abs(callee_found - callee_truth).max()
    )
    assert worst <= MAX_CLOCK_ERROR + 1 / RATE
    assert caller.drift_ppm == pytest.approx(80, abs=1)
    assert callee.drift_ppm == pytest.approx(-80, abs=1)
    assert [run.drift_ppm for run in caller.runs] == [caller.drift_ppm]


# Sample-exact checks: a codec whose every sample says which source sample it is.

LOUD = 200


class Tagged:
    """Payload: frame number and loudness. Sample = source sample number mod 128, plus
    128 * LOUD in loud frames: contiguity and quiet are both readable from the PCM."""

    sample_rate = RATE

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        frame, loud = struct.unpack(">IB", payload)
        tag = (frame * FRAME + np.arange(FRAME)) % 128
        return (tag + 128 * LOUD * loud).astype(np.int16)


def tagged(frames: int, rng: np.random.Generator, quiet: float = 0.1) -> list[bytes]:
    loud = rng.random(frames) >= quiet
    return [struct.pack(">IB", i, int(loud[i])) for i in range(frames)]


def source_samples(rendered: RenderedStream) -> tuple[int, npt.NDArray[np.int64]]:
    """First output sample and the source sample number at each covered output sample."""
    ((a, b),) = rendered.covered  # one stretch: nothing torn apart
    tag = rendered.pcm[a:b].astype(np.int64) % 128
    assert tag[0] == 0
    step = np.diff(tag) % 128
    advance = np.where(step <= 64, step, step - 128)  # > 1: dropped; < 1: repeated
    return a, np.concatenate(([0], np.cumsum(advance)))


def seams(rendered: RenderedStream) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Where the output stops being the source sample after sample, and by how much."""
    a, source = source_samples(rendered)
    advance = np.diff(source)
    at = np.flatnonzero(advance != 1)
    return a + at, advance[at] - 1


def render_tagged(
    seconds: int, ppm: float, rng: np.random.Generator, **network: float
) -> RenderedStream:
    packets, received = network_packets(tagged(seconds * 50, rng), t0=T0, rng=rng, ppm=ppm,
                                        jitter=0.03, spikes=0.005, **network)  # fmt: skip
    assert received.all()
    placement = place_stream(packets, clock_rates={0: 8000})
    assert len(placement.runs) == 1
    return render_stream(
        placement, {0: Tagged}, sample_rate=RATE, start=T0 - 1, end=T0 + seconds + 1
    )


def placement_error(rendered: RenderedStream, ppm: float) -> npt.NDArray[np.float64]:
    """Seconds between where each source sample landed and when it was sent."""
    a, source = source_samples(rendered)
    landed = T0 - 1 + (a + np.arange(len(source))) / RATE
    return landed - true_time(source, t0=T0, ppm=ppm)


def test_gapless_drifting_stream_is_cut_rarely_and_only_where_quiet() -> None:
    rendered = render_tagged(600, 100.0, np.random.default_rng(8))
    error = placement_error(rendered, 100.0)
    assert np.abs(error).max() <= MAX_CLOCK_ERROR + 0.001
    where, dropped = seams(rendered)
    # 10 min at 100 ppm is 60 ms to take out; each cut takes 1.5 to 6 ms.
    assert 10 <= len(where) <= 600 * 100e-6 / MAX_CLOCK_ERROR + 2
    assert np.all(dropped > 0) and np.all(dropped <= 2 * MAX_CLOCK_ERROR * RATE)
    pcm = rendered.pcm
    assert np.all(pcm[where] < 128) and np.all(pcm[where + 1] < 128)  # quiet on both sides


def test_slow_sender_gets_samples_repeated_in_quiet_frames() -> None:
    rendered = render_tagged(300, -100.0, np.random.default_rng(9))
    assert np.abs(placement_error(rendered, -100.0)).max() <= MAX_CLOCK_ERROR + 0.001
    where, dropped = seams(rendered)
    assert len(where) >= 5 and np.all(dropped < 0)
    assert np.all(rendered.pcm[where] < 128) and np.all(rendered.pcm[where + 1] < 128)


@pytest.mark.parametrize(("delay", "step"), [(0.0, 0.2), (0.2, -0.2)])
def test_network_path_change_does_not_tear_the_audio(delay: float, step: float) -> None:
    """Half-way through, the path gets 200 ms longer (or shorter): the audio stays one
    contiguous stretch, placed at the time it was sent, with no seam but drift cuts."""
    rendered = render_tagged(1200, 80.0, np.random.default_rng(10), delay=delay,
                             delay_steps=((T0 + 600, step),))  # fmt: skip
    assert np.abs(placement_error(rendered, 80.0)).max() <= MAX_CLOCK_ERROR + 0.001
    where, dropped = seams(rendered)
    assert len(where) <= 1200 * 80e-6 / MAX_CLOCK_ERROR + 2
    assert np.all(np.abs(dropped) <= 2 * MAX_CLOCK_ERROR * RATE)
