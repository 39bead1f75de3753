"""Placing a stream's packets on the wall-clock timeline."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.media.g711 import UlawDecoder, encode_ulaw
from callvault.media.timeline import (
    StreamPacket,
    merge_ranges,
    place_stream,
    render_stream,
    subtract_ranges,
)
from tests.media.synth import FRAME, stream_packets

T0 = 1_700_000_000.0


class Linear16:
    """A test codec: big-endian 16-bit samples, so every sample value is exact."""

    sample_rate = 8000

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return np.frombuffer(payload, dtype=">i2").astype(np.int16)


def numbered(count: int) -> list[bytes]:
    """Frame i holds 160 samples of value i + 1: where a frame lands is visible."""
    return [np.full(FRAME, i + 1, dtype=">i2").tobytes() for i in range(count)]


def expected(count: int, missing: set[int] = frozenset()) -> npt.NDArray[np.int16]:  # type: ignore[assignment]
    return np.concatenate(
        [np.full(FRAME, 0 if i in missing else i + 1, dtype=np.int16) for i in range(count)]
    )


def render(
    packets: list[StreamPacket],
    start: float = T0,
    end: float | None = None,
    paused: list[tuple[float, float | None]] | None = None,
    payload_type: int = 0,
) -> tuple[npt.NDArray[np.int16], float, int]:
    placement = place_stream(packets, payload_type=payload_type, clock_rate=8000)
    if end is None:
        span = placement.span(Linear16())
        assert span is not None
        end = span[1]
    out = render_stream(placement, Linear16(), start=start, end=end, paused=paused or ())
    return out.pcm, out.silence_ratio, out.packets_used


def test_in_order_stream() -> None:
    packets = stream_packets(numbered(50), t0=T0)
    placement = place_stream(packets, payload_type=0, clock_rate=8000)
    assert placement.span(Linear16()) == pytest.approx((T0, T0 + 1.0))
    assert (placement.packets_used, placement.duplicates, placement.skipped) == (50, 0, 0)
    pcm, silence, used = render(packets)
    assert np.array_equal(pcm, expected(50))
    assert (silence, used) == (0.0, 50)


def test_lost_packets_leave_silence() -> None:
    packets = [
        p for i, p in enumerate(stream_packets(numbered(50), t0=T0)) if i not in (10, 11, 12)
    ]
    pcm, silence, used = render(packets)
    assert np.array_equal(pcm, expected(50, {10, 11, 12}))
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
    placement = place_stream(arrived, payload_type=0, clock_rate=8000)
    assert placement.duplicates == 1
    pcm, silence, _ = render(arrived)
    assert np.array_equal(pcm, expected(50))
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
    assert np.array_equal(pcm, expected(100))
    assert silence == 0.0


def test_late_start_is_leading_silence() -> None:
    packets = stream_packets(numbered(10), t0=T0 + 1.0)
    pcm, silence, _ = render(packets, start=T0, end=T0 + 1.2)
    assert len(pcm) == 9600
    assert not pcm[:8000].any()
    assert np.array_equal(pcm[8000:], expected(10))
    assert silence == pytest.approx(8000 / 9600)


def test_window_clips_frames() -> None:
    packets = stream_packets(numbered(10), t0=T0)
    # Start 10 ms into frame 2, end 10 ms into frame 7.
    pcm, _, used = render(packets, start=T0 + 0.05, end=T0 + 0.15)
    assert np.array_equal(pcm, expected(10)[400:1200])
    assert used == 6


def test_paused_intervals_are_forced_to_silence() -> None:
    packets = stream_packets(numbered(50), t0=T0)
    pcm, silence, _ = render(packets, paused=[(T0 + 0.2, T0 + 0.4), (T0 + 0.9, None)])
    want = expected(50)
    want[1600:3200] = 0
    want[7200:] = 0
    assert np.array_equal(pcm, want)
    assert silence == pytest.approx(0.3)


def test_timestamp_and_sequence_wrap() -> None:
    packets = stream_packets(numbered(40), t0=T0, seq0=65520, ts0=2**32 - 10 * FRAME)
    pcm, silence, _ = render(packets)
    assert np.array_equal(pcm, expected(40))
    assert silence == 0.0


def test_ssrc_change_is_anchored_on_arrival() -> None:
    first = stream_packets(numbered(50)[:25], t0=T0, ssrc=1, ts0=123)
    second = stream_packets(numbered(50)[25:], t0=T0 + 0.5, ssrc=2, ts0=3_000_000_000, seq0=9)
    placement = place_stream(first + second, payload_type=0, clock_rate=8000)
    assert [s.ssrc for s in placement.segments] == [1, 2]
    pcm, silence, _ = render(first + second)
    assert np.array_equal(pcm, expected(50))
    assert silence == 0.0


def test_hold_without_timestamp_advance_starts_a_new_anchor() -> None:
    before = stream_packets(numbered(50)[:25], t0=T0)
    # After 4.5 s on hold the sender goes on as if no time had passed.
    after = stream_packets(numbered(50)[25:], t0=T0 + 5.0, seq0=1025, ts0=50_000 + 25 * FRAME)
    placement = place_stream(before + after, payload_type=0, clock_rate=8000)
    assert len(placement.segments) == 2
    pcm, silence, _ = render(before + after)
    assert len(pcm) == 5.5 * 8000
    assert np.array_equal(pcm[:4000], expected(25))
    assert not pcm[4000:40000].any()
    assert np.array_equal(pcm[40000:], expected(50)[4000:])
    assert silence == pytest.approx(4.5 / 5.5)


def test_dtx_gap_with_matching_timestamps_keeps_one_anchor() -> None:
    before = stream_packets(numbered(50)[:25], t0=T0)
    after = stream_packets(numbered(50)[25:], t0=T0 + 3.5, seq0=1025, ts0=50_000 + 28_000)
    placement = place_stream(before + after, payload_type=0, clock_rate=8000)
    assert len(placement.segments) == 1
    pcm, _, _ = render(before + after)
    assert np.array_equal(pcm[28000:], expected(50)[4000:])


def test_telephone_events_and_comfort_noise_are_skipped() -> None:
    packets = stream_packets(numbered(20), t0=T0)
    dtmf = StreamPacket(T0 + 0.1, 5000, 50_000 + 800, 0xABCD, 101, b"\x05\x0a\x00\xa0")
    noise = StreamPacket(T0 + 0.2, 5001, 50_000 + 1600, 0xABCD, 13, b"\x40")
    placement = place_stream(
        [*packets[:5], dtmf, *packets[5:10], noise, *packets[10:]], payload_type=0, clock_rate=8000
    )
    assert (placement.packets_used, placement.skipped) == (20, 2)


def test_empty_stream() -> None:
    placement = place_stream([], payload_type=0, clock_rate=8000)
    assert placement.span(Linear16()) is None
    out = render_stream(placement, Linear16(), start=T0, end=T0 + 1)
    assert len(out.pcm) == 8000 and not out.pcm.any()
    assert out.silence_ratio == 1.0
    assert render_stream(placement, Linear16(), start=T0, end=T0).silence_ratio == 0.0


def test_with_the_g711_decoder() -> None:
    level = np.full(FRAME, 1000, dtype=np.int16)
    packets = stream_packets([encode_ulaw(level)] * 5, t0=T0)
    placement = place_stream(packets, payload_type=0, clock_rate=8000)
    out = render_stream(placement, UlawDecoder(), start=T0 - 0.02, end=T0 + 0.1)
    assert not out.pcm[:160].any()
    assert set(out.pcm[160:].tolist()) == {988}  # the µ-law step 1000 falls into


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
