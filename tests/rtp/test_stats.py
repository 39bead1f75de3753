"""Per-stream statistics with scripted packet sequences."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.rtp.stats import StreamStatistics

T0 = 1_700_000_000.0
SSRC = 0x1234


def feed(
    stats: StreamStatistics,
    seqs: list[int],
    *,
    ssrc: int = SSRC,
    t0: float = T0,
    first_seq: int | None = None,
) -> None:
    """Packets every 20 ms whose timestamps follow their sequence numbers exactly."""
    base = seqs[0] if first_seq is None else first_seq
    for i, seq in enumerate(seqs):
        step = (seq - base) & 0xFFFF
        stats.update(seq, (1000 + 160 * step) & 0xFFFFFFFF, ssrc, 172, t0 + 0.02 * i)


def test_clean_stream() -> None:
    stats = StreamStatistics()
    feed(stats, list(range(100, 200)))
    snap = stats.snapshot()
    assert (snap.packets, snap.expected, snap.received) == (100, 100, 100)
    assert (snap.lost, snap.cumulative_lost, snap.loss_ratio) == (0, 0, 0.0)
    assert (snap.duplicates, snap.reordered, snap.ssrc_changes) == (0, 0, 0)
    assert snap.bytes_received == 172 * 100
    assert snap.first_packet_at == T0
    assert snap.last_packet_at == pytest.approx(T0 + 1.98)
    assert snap.ssrc == SSRC
    assert snap.highest_sequence == 199
    assert snap.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert snap.silent_stretches == ()


def test_one_packet_counts_as_received() -> None:
    stats = StreamStatistics()
    stats.update(7, 0, SSRC, 172, T0)
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.lost) == (1, 1, 0)


def test_nothing_received() -> None:
    snap = StreamStatistics().snapshot()
    assert (snap.packets, snap.expected, snap.ssrc, snap.highest_sequence) == (0, 0, None, None)
    assert snap.first_packet_at is None


def test_loss() -> None:
    stats = StreamStatistics()
    seqs = [s for s in range(1, 101) if s not in (10, 11, 12, 50)]
    feed(stats, seqs)
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.lost) == (100, 96, 4)
    assert snap.loss_ratio == 0.04


def test_reordering_is_not_loss() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 3, 5, 4, 6, 8, 7, 9, 10])
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.lost) == (10, 10, 0)
    assert (snap.reordered, snap.duplicates) == (2, 0)


def test_duplicates_make_cumulative_lost_negative_but_lost_stays_zero() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 3, 3, 4, 2, 5])
    snap = stats.snapshot()
    assert (snap.expected, snap.received) == (5, 7)
    assert snap.cumulative_lost == -2
    assert snap.lost == 0
    assert (snap.duplicates, snap.reordered) == (2, 0)


def test_late_duplicate_of_a_reordered_packet() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 4, 3, 3, 5])
    snap = stats.snapshot()
    assert (snap.reordered, snap.duplicates) == (1, 1)


def test_sequence_wrap_around() -> None:
    stats = StreamStatistics()
    seqs = [65530, 65531, 65532, 65533, 65535, 0, 1, 2, 3, 4, 5]  # 65534 lost
    feed(stats, seqs)
    snap = stats.snapshot()
    assert snap.highest_sequence == 65536 + 5
    assert (snap.expected, snap.received, snap.lost) == (12, 11, 1)


def test_reordered_across_the_wrap() -> None:
    stats = StreamStatistics()
    feed(stats, [65533, 65534, 0, 65535, 1])
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.reordered, snap.lost) == (5, 5, 1, 0)
    assert snap.highest_sequence == 65537


def test_probation_starts_again_on_a_non_sequential_second_packet() -> None:
    stats = StreamStatistics()
    feed(stats, [10, 500, 501, 502])
    snap = stats.snapshot()
    assert snap.packets == 4
    assert (snap.expected, snap.received) == (3, 3)  # the stray first packet is not counted


def test_ssrc_change_starts_a_new_run_and_adds_up() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 3, 5])  # 4 lost
    feed(stats, [40000, 40001, 40003], ssrc=0x9999, t0=T0 + 1)  # 40002 lost
    snap = stats.snapshot()
    assert snap.ssrc == 0x9999
    assert snap.ssrc_changes == 1
    assert (snap.expected, snap.received, snap.lost) == (9, 7, 2)
    assert snap.packets == 7


def test_sequence_restart_needs_two_sequential_packets() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 3, 4, 5])
    stats.update(30000, 0, SSRC, 172, T0 + 1.0)  # one stray jump: ignored
    stats.update(6, 1000 + 160 * 5, SSRC, 172, T0 + 1.02)
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.packets) == (6, 6, 7)
    stats.update(20000, 50_000, SSRC, 172, T0 + 1.04)  # the sender restarted
    stats.update(20001, 50_160, SSRC, 172, T0 + 1.06)
    stats.update(20002, 50_320, SSRC, 172, T0 + 1.08)
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.lost) == (9, 9, 0)
    assert snap.ssrc_changes == 0


def test_jitter_against_a_hand_computed_value() -> None:
    # RFC 3550 A.8 in timestamp units (8 kHz): transit times 0, 0, 80, 0, so
    # D = 0, 80, 80 and J = 0, 80/16 = 5, 5 + (80 - 5)/16 = 9.6875 -> 1.2109375 ms.
    stats = StreamStatistics(8000)
    for seq, ts, arrival in [(1, 0, 0.0), (2, 160, 0.020), (3, 320, 0.050), (4, 480, 0.060)]:
        stats.update(seq, ts, SSRC, 172, 100.0 + arrival)
    snap = stats.snapshot()
    assert snap.jitter_ms == pytest.approx(9.6875 / 8, rel=1e-6)
    assert snap.max_jitter_ms == pytest.approx(9.6875 / 8, rel=1e-6)


def test_jitter_across_timestamp_wrap_is_unaffected() -> None:
    stats = StreamStatistics(8000)
    for i in range(10):
        stats.update(i, (2**32 - 800 + 160 * i) & 0xFFFFFFFF, SSRC, 172, 100.0 + 0.02 * i)
    assert stats.snapshot().jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_hold_without_timestamp_advance_is_not_jitter() -> None:
    stats = StreamStatistics(8000)
    feed(stats, [1, 2, 3])
    stats.update(4, 1000 + 160 * 3, SSRC, 172, T0 + 30.0)  # 30 s later, timestamp as if 20 ms
    stats.update(5, 1000 + 160 * 4, SSRC, 172, T0 + 30.02)
    assert stats.snapshot().jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_clock_rate_change_keeps_jitter_in_milliseconds() -> None:
    stats = StreamStatistics(8000)
    for seq, ts, arrival in [(1, 0, 0.0), (2, 160, 0.020), (3, 320, 0.050)]:
        stats.update(seq, ts, SSRC, 172, 100.0 + arrival)
    before = stats.snapshot().jitter_ms
    stats.set_clock_rate(48000)
    assert stats.clock_rate == 48000
    assert stats.snapshot().jitter_ms == pytest.approx(before)
    with pytest.raises(ValueError, match="clock rate must be positive, got 0"):
        stats.set_clock_rate(0)


def test_silent_stretches() -> None:
    stats = StreamStatistics(gap_threshold=2.0)
    stats.update(1, 0, SSRC, 172, 10.0)
    stats.update(2, 160, SSRC, 172, 11.9)  # 1.9 s: not a stretch
    stats.update(3, 320, SSRC, 172, 15.0)  # 3.1 s: a stretch
    snap = stats.snapshot()
    assert snap.silent_stretches == ((11.9, 15.0),)
    assert snap.silent_stretch_count == 1
    assert snap.silent_seconds == pytest.approx(3.1)


def test_gaps_while_paused_are_not_silent_stretches() -> None:
    stats = StreamStatistics(gap_threshold=2.0)
    stats.update(1, 0, SSRC, 172, 10.0)
    stats.pause(11.0)
    stats.pause(12.0)  # already paused: ignored
    stats.resume(30.0)
    stats.resume(31.0)  # not paused: ignored
    stats.update(2, 160, SSRC, 172, 31.5)
    stats.pause(40.0)  # 8.5 s without packets before this pause
    snap = stats.snapshot(now=50.0)
    assert snap.paused == ((11.0, 30.0), (40.0, None))
    assert snap.silent_stretches == ((31.5, 40.0),)
    assert stats.paused is True


def test_packets_sent_while_paused_are_neither_expected_nor_lost() -> None:
    # The SRC keeps sending while a user paused the recording: those packets are dropped
    # unread, so the first packet after the resume jumps 100 sequence numbers ahead.
    stats = StreamStatistics()
    feed(stats, list(range(100, 150)))
    stats.pause(T0 + 1.0)
    stats.resume(T0 + 3.0)
    feed(stats, list(range(250, 300)), t0=T0 + 3.0, first_seq=100)
    snap = stats.snapshot()
    assert (snap.expected, snap.received, snap.lost) == (100, 100, 0)
    # A real loss after the resume still counts.
    feed(stats, [302, 303], t0=T0 + 5.0, first_seq=100)
    assert stats.snapshot().lost == 2


def test_late_start_and_open_gap() -> None:
    stats = StreamStatistics(gap_threshold=2.0, started_at=5.0)
    stats.update(1, 0, SSRC, 172, 9.0)
    assert stats.snapshot().silent_stretches == ((5.0, 9.0),)
    snap = stats.snapshot(now=12.0)
    assert snap.silent_stretches == ((5.0, 9.0), (9.0, 12.0))
    assert snap.silent_stretch_count == 2
    assert stats.snapshot(now=10.0).silent_stretch_count == 1


def test_silent_stretch_list_is_bounded_but_counted() -> None:
    stats = StreamStatistics(gap_threshold=1.0, max_silent_stretches=3)
    for i in range(10):
        stats.update(i, 160 * i, SSRC, 172, 10.0 * i)
    snap = stats.snapshot()
    assert len(snap.silent_stretches) == 3
    assert snap.silent_stretch_count == 9
    assert snap.silent_seconds == pytest.approx(90.0)


def test_paused_list_is_bounded_by_reopening_the_last_interval() -> None:
    stats = StreamStatistics(max_paused_intervals=2)
    for i in range(4):
        stats.pause(10.0 * i)
        stats.resume(10.0 * i + 5)
    stats.pause(100.0)
    assert stats.snapshot().paused == ((0.0, 5.0), (10.0, None))


def test_garbage_is_counted_apart() -> None:
    stats = StreamStatistics()
    stats.count_garbage()
    stats.count_garbage()
    snap = stats.snapshot()
    assert (snap.garbage, snap.packets) == (2, 0)


def test_snapshot_as_dict_is_json() -> None:
    stats = StreamStatistics()
    feed(stats, [1, 2, 4])
    stats.pause(T0 + 1)
    data = json.loads(json.dumps(stats.snapshot().as_dict()))
    assert data["expected"] == 4
    assert data["lost"] == 1
    assert data["paused"] == [[T0 + 1, None]]
    assert data["silent_stretches"] == []


def test_bad_clock_rate() -> None:
    with pytest.raises(ValueError, match="clock rate must be positive, got -1"):
        StreamStatistics(-1)


@given(
    start=st.integers(0, 0xFFFF),
    length=st.integers(2, 400),
    data=st.data(),
)
def test_counts_agree_for_any_loss_reorder_and_duplication(
    start: int, length: int, data: st.DataObject
) -> None:
    offsets = list(range(length))
    # Keep the first two in order (probation) and the highest last; anything between
    # may be lost, duplicated or moved by a few places.
    middle = data.draw(
        st.lists(st.sampled_from(offsets[2:-1]), max_size=2 * length) if length > 3 else st.just([])
    )
    arrivals = [0, 1, *sorted(middle, key=lambda o: o + data.draw(st.integers(-5, 5))), length - 1]
    stats = StreamStatistics()
    for i, offset in enumerate(arrivals):
        stats.update((start + offset) & 0xFFFF, 160 * offset, SSRC, 172, 100.0 + 0.02 * i)
    snap = stats.snapshot()
    assert snap.expected == length
    assert snap.received == len(arrivals)
    assert snap.duplicates == len(arrivals) - len(set(arrivals))
    assert snap.lost == max(0, length - len(arrivals))
    assert snap.cumulative_lost == length - len(arrivals)
    assert snap.highest_sequence is not None
    assert snap.highest_sequence & 0xFFFF == (start + length - 1) & 0xFFFF


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 3))))
def test_update_never_fails(packets: list[tuple[int, int, int]]) -> None:
    stats = StreamStatistics()
    for i, (seq, ts, ssrc) in enumerate(packets):
        stats.update(seq, ts, ssrc, 100, float(i))
    snap = stats.snapshot()
    assert snap.packets == len(packets)
    assert snap.lost >= 0
