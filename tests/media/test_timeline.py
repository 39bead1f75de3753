"""Placing a stream's packets on the wall-clock timeline and rendering them."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.media.g711 import UlawDecoder, encode_ulaw
from callvault.media.timeline import (
    StreamPacket,
    merge_ranges,
    place_stream,
    render_stream,
    subtract_ranges,
)
from tests.media.synth import (
    FRAME,
    Linear16,
    Wide16,
    by_arrival,
    numbered,
    numbered_pcm,
    shifted,
    stream_packets,
)

T0 = 1_700_000_000.0


def render(
    packets: list[StreamPacket],
    start: float = T0,
    end: float | None = None,
    paused: list[tuple[float, float | None]] | None = None,
    payload_type: int = 0,
) -> tuple[npt.NDArray[np.int16], float, int]:
    placement = place_stream(packets, clock_rates={payload_type: 8000})
    if end is None:
        span = placement.span()
        assert span is not None
        end = span[1]
    out = render_stream(
        placement,
        {payload_type: Linear16},
        sample_rate=8000,
        start=start,
        end=end,
        paused=paused or (),
    )
    return out.pcm, out.silence_ratio, out.packets_used


def test_in_order_stream() -> None:
    packets = stream_packets(numbered(50), t0=T0)
    placement = place_stream(packets, clock_rates={0: 8000})
    assert placement.span() == pytest.approx((T0, T0 + 1.0))
    assert (placement.packets_used, placement.duplicates, placement.skipped) == (50, 0, 0)
    pcm, silence, used = render(packets)
    assert np.array_equal(pcm, numbered_pcm(50))
    assert (silence, used) == (0.0, 50)


def test_lost_packets_leave_silence() -> None:
    packets = [
        p for i, p in enumerate(stream_packets(numbered(50), t0=T0)) if i not in (10, 11, 12)
    ]
    pcm, silence, used = render(packets)
    assert np.array_equal(pcm, numbered_pcm(50, {10, 11, 12}))
    assert silence == pytest.approx(3 / 50)
    assert used == 47


def test_reordered_and_duplicated_packets() -> None:
    packets = stream_packets(numbered(50), t0=T0)
    # Packets 20 and 30 are held up in the network and overtaken by later ones.
    late = {20: 0.07, 30: 0.03}
    arrived = [
        dataclasses.replace(p, arrival=p.arrival + late.get(i, 0)) for i, p in enumerate(packets)
    ]
    arrived.sort(key=lambda p: p.arrival)
    assert [p.sequence_number - 1000 for p in arrived[19:25]] == [19, 21, 22, 23, 20, 24]
    arrived.insert(40, dataclasses.replace(packets[35], arrival=T0 + 0.8))
    placement = place_stream(arrived, clock_rates={0: 8000})
    assert placement.duplicates == 1
    pcm, silence, _ = render(arrived)
    assert np.array_equal(pcm, numbered_pcm(50))
    assert silence == 0.0


def test_jitter_does_not_move_audio() -> None:
    rng = random.Random(7)
    packets = stream_packets(numbered(100), t0=T0)
    # Network delay between 0 and 60 ms; one packet crossed with no queueing at all.
    jittered = [
        dataclasses.replace(p, arrival=p.arrival + (0 if i == 42 else rng.uniform(0.001, 0.06)))
        for i, p in enumerate(packets)
    ]
    jittered.sort(key=lambda p: p.arrival)
    pcm, silence, _ = render(jittered, end=T0 + 2.0)
    assert np.array_equal(pcm, numbered_pcm(100))
    assert silence == 0.0


def test_late_start_is_leading_silence() -> None:
    packets = stream_packets(numbered(10), t0=T0 + 1.0)
    pcm, silence, _ = render(packets, start=T0, end=T0 + 1.2)
    assert len(pcm) == 9600
    assert not pcm[:8000].any()
    assert np.array_equal(pcm[8000:], numbered_pcm(10))
    assert silence == pytest.approx(8000 / 9600)


def test_window_clips_frames() -> None:
    packets = stream_packets(numbered(10), t0=T0)
    # Start 10 ms into frame 2, end 10 ms into frame 7.
    pcm, _, used = render(packets, start=T0 + 0.05, end=T0 + 0.15)
    assert np.array_equal(pcm, numbered_pcm(10)[400:1200])
    assert used == 6


def test_paused_intervals_are_forced_to_silence() -> None:
    packets = stream_packets(numbered(50), t0=T0)
    pcm, silence, _ = render(packets, paused=[(T0 + 0.2, T0 + 0.4), (T0 + 0.9, None)])
    want = numbered_pcm(50)
    want[1600:3200] = 0
    want[7200:] = 0
    assert np.array_equal(pcm, want)
    assert silence == pytest.approx(0.3)


def test_timestamp_and_sequence_wrap() -> None:
    packets = stream_packets(numbered(40), t0=T0, seq0=65520, ts0=2**32 - 10 * FRAME)
    pcm, silence, _ = render(packets)
    assert np.array_equal(pcm, numbered_pcm(40))
    assert silence == 0.0


def test_ssrc_change_is_placed_by_its_own_arrivals() -> None:
    first = stream_packets(numbered(50)[:25], t0=T0, ssrc=1, ts0=123)
    second = stream_packets(numbered(50)[25:], t0=T0 + 0.5, ssrc=2, ts0=3_000_000_000, seq0=9)
    placement = place_stream(first + second, clock_rates={0: 8000})
    assert [s.ssrc for s in placement.runs] == [1, 2]
    pcm, silence, _ = render(first + second)
    assert np.array_equal(pcm, numbered_pcm(50))
    assert silence == 0.0


def test_hold_without_timestamp_advance_starts_a_new_run() -> None:
    before = stream_packets(numbered(50)[:25], t0=T0)
    # After 4.5 s on hold the sender goes on as if no time had passed.
    after = stream_packets(numbered(50)[25:], t0=T0 + 5.0, seq0=1025, ts0=50_000 + 25 * FRAME)
    placement = place_stream(before + after, clock_rates={0: 8000})
    assert len(placement.runs) == 2
    pcm, silence, _ = render(before + after)
    assert len(pcm) == 5.5 * 8000
    assert np.array_equal(pcm[:4000], numbered_pcm(25))
    assert not pcm[4000:40000].any()
    assert np.array_equal(pcm[40000:], numbered_pcm(50)[4000:])
    assert silence == pytest.approx(4.5 / 5.5)


def test_dtx_gap_with_matching_timestamps_keeps_one_run() -> None:
    before = stream_packets(numbered(50)[:25], t0=T0)
    after = stream_packets(numbered(50)[25:], t0=T0 + 3.5, seq0=1025, ts0=50_000 + 28_000)
    placement = place_stream(before + after, clock_rates={0: 8000})
    assert len(placement.runs) == 1
    pcm, _, _ = render(before + after)
    assert np.array_equal(pcm[28000:], numbered_pcm(50)[4000:])


def test_telephone_events_and_comfort_noise_are_skipped() -> None:
    packets = stream_packets(numbered(20), t0=T0)
    dtmf = StreamPacket(T0 + 0.1, 5000, 50_000 + 800, 0xABCD, 101, b"\x05\x0a\x00\xa0")
    noise = StreamPacket(T0 + 0.2, 5001, 50_000 + 1600, 0xABCD, 13, b"\x40")
    placement = place_stream(
        [*packets[:5], dtmf, *packets[5:10], noise, *packets[10:]], clock_rates={0: 8000}
    )
    assert (placement.packets_used, placement.skipped) == (20, 2)


def test_empty_stream() -> None:
    placement = place_stream([], clock_rates={0: 8000})
    assert placement.span() is None
    out = render_stream(placement, {0: Linear16}, sample_rate=8000, start=T0, end=T0 + 1)
    assert len(out.pcm) == 8000 and not out.pcm.any()
    assert out.silence_ratio == 1.0
    assert (
        render_stream(placement, {0: Linear16}, sample_rate=8000, start=T0, end=T0).silence_ratio
        == 0.0
    )


def test_with_the_g711_decoder() -> None:
    level = np.full(FRAME, 1000, dtype=np.int16)
    packets = stream_packets([encode_ulaw(level)] * 5, t0=T0)
    placement = place_stream(packets, clock_rates={0: 8000})
    out = render_stream(
        placement, {0: UlawDecoder}, sample_rate=8000, start=T0 - 0.02, end=T0 + 0.1
    )
    assert not out.pcm[:160].any()
    assert set(out.pcm[160:].tolist()) == {988}  # the µ-law step 1000 falls into


def test_sender_restart_on_the_same_ssrc_with_stragglers() -> None:
    """The sender restarts with new sequence numbers and timestamps; two of its old
    packets are still in the network and arrive after the first new ones."""
    old = stream_packets(numbered(25), t0=T0)
    new = stream_packets(numbered(50, 25), t0=T0 + 0.5, seq0=30_000, ts0=3_000_000_000)
    old[23:] = shifted(old[23:], 0.045)
    placement = place_stream(by_arrival(old + new), clock_rates={0: 8000})
    assert len(placement.runs) == 2
    pcm, silence, used = render(by_arrival(old + new))
    assert np.array_equal(pcm, numbered_pcm(50))
    assert (silence, used) == (0.0, 50)


@pytest.mark.parametrize("jump", [0.3, -0.3])
def test_small_timestamp_jump_is_placed_by_arrival(jump: float) -> None:
    """Timestamps jump by 300 ms (less than max_jump) while packets keep coming: the
    audio after the jump is placed by its own arrivals, not 300 ms off; backwards, it
    would otherwise overwrite what came before."""
    rng = random.Random(3)
    before = stream_packets(numbered(50), t0=T0)
    after = stream_packets(numbered(100, 50), t0=T0 + 1.0, seq0=1050,
                           ts0=50_000 + 50 * FRAME + round(jump * 8000))  # fmt: skip
    jittered = [
        dataclasses.replace(p, arrival=p.arrival + (0 if i % 50 == 7 else rng.uniform(0, 0.03)))
        for i, p in enumerate(before + after)
    ]
    placement = place_stream(by_arrival(jittered), clock_rates={0: 8000})
    assert [len(run.payloads) for run in placement.runs] == [50, 50]
    pcm, silence, _ = render(by_arrival(jittered))
    assert np.array_equal(pcm, numbered_pcm(100))
    assert silence == 0.0


@pytest.mark.parametrize("timestamps_advance", [True, False])
def test_hold_of_a_minute_without_packets(timestamps_advance: bool) -> None:
    """Whether or not the sender's timestamps ran on during the hold, the audio after
    it is placed where it arrived and the minute in between is silent."""
    before = stream_packets(numbered(25), t0=T0)
    resume_ts = 50_000 + 25 * FRAME + (60 * 8000 if timestamps_advance else 0)
    after = stream_packets(numbered(50, 25), t0=T0 + 60.5, seq0=1025, ts0=resume_ts)
    placement = place_stream(before + after, clock_rates={0: 8000})
    assert len(placement.runs) == (1 if timestamps_advance else 2)
    pcm, silence, _ = render(before + after)
    assert len(pcm) == 61 * 8000
    assert np.array_equal(pcm[:4000], numbered_pcm(25))
    assert not pcm[4000:484_000].any()
    assert np.array_equal(pcm[484_000:], numbered_pcm(50)[4000:])
    assert silence == pytest.approx(60 / 61)


def test_other_party_starting_5_s_late_is_silent_until_then() -> None:
    caller = stream_packets(numbered(400), t0=T0, ssrc=1)
    callee = stream_packets(numbered(150), t0=T0 + 5.0, ssrc=2)
    left, _, _ = render(caller, end=T0 + 8)
    right, silence, _ = render(callee, start=T0, end=T0 + 8)
    assert len(left) == len(right) == 64_000
    assert not right[:40_000].any()
    assert np.array_equal(right[40_000:], numbered_pcm(150)[:24_000])
    assert silence == pytest.approx(5 / 8)


def test_payload_type_with_another_clock_rate_starts_its_own_run() -> None:
    """After 0.5 s the sender switches to a 16 kHz codec with a 16 kHz RTP clock."""
    narrow = stream_packets(numbered(25), t0=T0)
    wide = [
        dataclasses.replace(p, payload_type=96, timestamp=(p.timestamp * 2) & 0xFFFFFFFF)
        for p in stream_packets(numbered(50, 25, per_frame=2 * FRAME), t0=T0 + 0.5, seq0=1025,
                                ts0=50_000 + 25 * FRAME)
    ]  # fmt: skip
    placement = place_stream(narrow + wide, clock_rates={0: 8000, 96: 16000})
    assert [run.clock_rate for run in placement.runs] == [8000, 16000]
    out = render_stream(
        placement, {0: Linear16, 96: Wide16}, sample_rate=16000, start=T0, end=T0 + 1
    )
    assert out.covered == ((0, 16000),)
    assert np.array_equal(out.pcm[8000:], np.repeat(np.arange(26, 51), 320))


@pytest.mark.parametrize("bad", [{128: 8000}, {0: 0}])
def test_clock_rates_are_checked(bad: dict[int, int]) -> None:
    with pytest.raises(ValueError, match="clock rate"):
        place_stream([], clock_rates=bad)


def test_runs_say_where_they_landed() -> None:
    first = stream_packets(numbered(25), t0=T0 + 1.0, ssrc=7)
    second = stream_packets(numbered(50, 25), t0=T0 + 3.0, ssrc=9, payload_type=8)
    placement = place_stream(first + second, clock_rates={0: 8000, 8: 8000})
    out = render_stream(
        placement, {0: Linear16, 8: Linear16}, sample_rate=8000, start=T0, end=T0 + 4
    )
    assert [(r.ssrc, r.start, r.end, r.payload_types) for r in out.runs] == [
        (7, 1.0, 1.5, (0,)),
        (9, 3.0, 3.5, (8,)),
    ]
    assert out.drift_ppm == 0.0  # half a second tells nothing about a clock


@settings(max_examples=60, deadline=None)
@given(
    delays=st.lists(st.floats(0, 0.06), min_size=40, max_size=40),
    fastest=st.integers(0, 39),
    repeats=st.lists(st.tuples(st.integers(0, 39), st.floats(0, 0.06)), max_size=8),
)
def test_any_arrival_order_within_the_jitter_window_renders_the_same(
    delays: list[float], fastest: int, repeats: list[tuple[int, float]]
) -> None:
    """Delays up to 60 ms (one packet crossing with none), any resulting order, any
    duplicates: the same PCM as the packets in order and on time."""
    packets = stream_packets(numbered(40), t0=T0)
    delays[fastest] = 0.0
    arrived = [
        dataclasses.replace(p, arrival=p.arrival + d) for p, d in zip(packets, delays, strict=True)
    ]
    arrived += [dataclasses.replace(packets[i], arrival=packets[i].arrival + d) for i, d in repeats]
    placement = place_stream(by_arrival(arrived), clock_rates={0: 8000})
    assert placement.duplicates == len(repeats)
    pcm, silence, used = render(by_arrival(arrived), end=T0 + 0.8)
    assert np.array_equal(pcm, numbered_pcm(40))
    assert (silence, used) == (0.0, 40)


def test_range_helpers() -> None:
    assert merge_ranges([(5, 8), (0, 2), (1, 3), (3, 4), (7, 10)]) == [(0, 4), (5, 10)]
    assert subtract_ranges([(0, 10), (20, 30)], [(2, 4), (8, 22), (25, 26)]) == [
        (0, 2), (4, 8), (22, 25), (26, 30)
    ]  # fmt: skip


ranges = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 20)).map(lambda r: (r[0], r[0] + r[1]))
)


@given(ranges, ranges)
def test_range_helpers_agree_with_sets(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    def points(rs: list[tuple[int, int]]) -> set[int]:
        return {x for lo, hi in rs for x in range(lo, hi)}

    merged_a, merged_b = merge_ranges(a), merge_ranges(b)
    assert points(merged_a) == points(a)
    assert all(hi > lo for lo, hi in merged_a if (lo, hi) != (lo, lo))
    assert points(subtract_ranges(merged_a, merged_b)) == points(a) - points(b)
