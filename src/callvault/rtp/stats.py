"""Per-stream reception statistics (RFC 3550 appendix A.1 and A.8), cheap enough per packet.

``StreamStatistics.update`` takes the numbers ``peek_rtp`` already unpacked and the
arrival time, and keeps counters only: no object is built per packet. ``snapshot()``
returns a frozen ``StreamStatsSnapshot`` for the database, the web UI and RTCP reports.

Where this departs from A.1, on purpose:

* The packets that pass probation are counted (A.1 drops them from ``received`` and
  ``expected``), so a clean stream of N packets reports N received and N expected.
* A recorder port can see several sources in turn (an SBC that re-originates media
  after a transfer, say). Each new SSRC starts a new run (probation again, new jitter
  baseline); ``expected`` / ``received`` / ``lost`` add up all runs.
* Duplicates are told apart from reordered packets with a bitmap of the last 512
  sequence numbers; like A.1, ``received`` still counts duplicates, so
  ``cumulative_lost`` may be negative and ``lost`` is that clamped at zero.
* A transit-time change of more than one second is a timestamp discontinuity (hold
  without timestamps advancing, a sender restart), not jitter: the baseline is reset.

Silent stretches are gaps longer than ``gap_threshold`` seconds with no packet while
the stream was not paused; pause/resume come from signalling (a=inactive, SIPREC pause)
or from a user (T3). Packets a source keeps sending while paused are dropped unread: the
sequence numbers they used (the jump at the first packet after a resume) are neither
expected nor lost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamStatistics", "StreamStatsSnapshot"]

_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_MIN_SEQUENTIAL = 2
_WINDOW_BITS = 512
_WINDOW_MASK = (1 << _WINDOW_BITS) - 1
_TS_MOD = 1 << 32
_TS_HALF = 1 << 31
_DISCONTINUITY_S = 1.0


@dataclass(frozen=True, slots=True)
class StreamStatsSnapshot:
    """Statistics of one stream at one moment; ``as_dict()`` is JSON-ready."""

    clock_rate: int
    ssrc: int | None
    ssrc_changes: int
    packets: int
    bytes_received: int
    garbage: int
    first_packet_at: float | None
    last_packet_at: float | None
    highest_sequence: int | None
    expected: int
    received: int
    cumulative_lost: int
    lost: int
    loss_ratio: float
    duplicates: int
    reordered: int
    jitter_ms: float
    max_jitter_ms: float
    silent_stretches: tuple[tuple[float, float], ...]
    silent_stretch_count: int
    silent_seconds: float
    paused: tuple[tuple[float, float | None], ...]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = [list(v) for v in value] if isinstance(value, tuple) else value
        return out


class StreamStatistics:
    """Counters for one received stream (one recorder port); see the module docstring."""

    __slots__ = (
        "_bad_seq",
        "_base_ext",
        "_bytes",
        "_clock_rate",
        "_cycles",
        "_duplicates",
        "_first_at",
        "_gap_from",
        "_gap_threshold",
        "_garbage",
        "_jitter",
        "_last_at",
        "_max_jitter",
        "_max_paused",
        "_max_seq",
        "_max_stretches",
        "_packets",
        "_paused",
        "_paused_now",
        "_prior_expected",
        "_prior_received",
        "_probation",
        "_probation_count",
        "_received",
        "_reordered",
        "_resumed",
        "_seen",
        "_silent",
        "_silent_count",
        "_silent_seconds",
        "_skipped",
        "_ssrc",
        "_ssrc_changes",
        "_transit",
    )

    def __init__(
        self,
        clock_rate: int = 8000,
        *,
        gap_threshold: float = 2.0,
        started_at: float | None = None,
        max_silent_stretches: int = 64,
        max_paused_intervals: int = 1024,
    ) -> None:
        """``started_at`` (when the port was opened) makes a late first packet a gap."""
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self._clock_rate = clock_rate
        self._gap_threshold = gap_threshold
        self._max_stretches = max_silent_stretches
        self._max_paused = max(1, max_paused_intervals)
        self._packets = 0
        self._bytes = 0
        self._garbage = 0
        self._first_at: float | None = None
        self._last_at: float | None = None
        self._gap_from: float | None = started_at
        self._ssrc: int | None = None
        self._ssrc_changes = 0
        self._prior_expected = 0
        self._prior_received = 0
        self._duplicates = 0
        self._reordered = 0
        self._jitter = 0.0
        self._max_jitter = 0.0
        self._transit: float | None = None
        self._silent: list[tuple[float, float]] = []
        self._silent_count = 0
        self._silent_seconds = 0.0
        self._paused: list[tuple[float, float | None]] = []
        self._paused_now = False
        self._resumed = False  # the next packet's sequence jump is the pause, not loss
        self._skipped = 0  # sequence numbers sent while paused (dropped unread)
        self._reset_sequence(0)

    def _reset_sequence(self, seq: int) -> None:
        # A new run starts in probation with this packet as its first.
        self._probation = _MIN_SEQUENTIAL - 1
        self._probation_count = 1
        self._max_seq = seq
        self._cycles = 0
        self._base_ext = seq
        self._bad_seq = _SEQ_MOD + 1
        self._received = 0
        self._seen = 1

    def _run_counts(self) -> tuple[int, int]:
        """(expected, received) of the current run."""
        if self._ssrc is None:
            return 0, 0
        if self._probation:
            return self._probation_count, self._probation_count
        return self._cycles + self._max_seq - self._base_ext + 1, self._received

    def _close_run(self) -> None:
        expected, received = self._run_counts()
        self._prior_expected += expected
        self._prior_received += received

    @property
    def clock_rate(self) -> int:
        return self._clock_rate

    def set_clock_rate(self, clock_rate: int) -> None:
        """A codec change (re-INVITE): keep the jitter in time, restart its baseline."""
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        scale = clock_rate / self._clock_rate
        self._jitter *= scale
        self._max_jitter *= scale
        self._clock_rate = clock_rate
        self._transit = None

    def count_garbage(self) -> None:
        """A datagram on this port that is neither RTP nor RTCP."""
        self._garbage += 1

    def update(self, seq: int, timestamp: int, ssrc: int, size: int, now: float) -> None:
        """Account one RTP packet (``size``: the datagram's length) received at ``now``."""
        self._packets += 1
        self._bytes += size
        if self._first_at is None:
            self._first_at = now
        gap_from = self._gap_from
        if gap_from is not None and now - gap_from > self._gap_threshold and not self._paused_now:
            self._add_silence(gap_from, now)
        self._gap_from = self._last_at = now
        resumed = self._resumed
        if resumed:  # the first packet after a resume, whichever branch it takes below
            self._resumed = False

        if ssrc != self._ssrc:
            if self._ssrc is not None:
                self._ssrc_changes += 1
                self._close_run()
            self._ssrc = ssrc
            self._reset_sequence(seq)
            self._transit = now * self._clock_rate - timestamp
            return

        if self._probation:
            if seq == (self._max_seq + 1) & 0xFFFF:
                self._max_seq = seq
                self._probation_count += 1
                self._probation -= 1
                if not self._probation:
                    count = self._probation_count
                    self._base_ext = seq - count + 1
                    self._received = count
                    self._seen = (1 << count) - 1
            else:
                self._reset_sequence(seq)
        else:
            udelta = (seq - self._max_seq) & 0xFFFF
            if 0 < udelta < _MAX_DROPOUT:
                if resumed:
                    self._skipped += udelta - 1  # what the SRC sent while we did not listen
                if seq < self._max_seq:
                    self._cycles += _SEQ_MOD
                self._max_seq = seq
                self._seen = ((self._seen << udelta) | 1) & _WINDOW_MASK
                self._received += 1
            elif udelta == 0 or udelta > _SEQ_MOD - _MAX_MISORDER:
                self._received += 1
                bit = 1 << ((self._max_seq - seq) & 0xFFFF)
                if self._seen & bit:
                    self._duplicates += 1
                    return  # a copy says nothing new about transit time
                self._seen |= bit
                self._reordered += 1
            elif seq == self._bad_seq:
                # Two sequential packets after a big jump: the sender restarted its
                # sequence. Count the old run and begin again with both packets.
                self._close_run()
                self._reset_sequence(seq)
                self._probation = 0
                self._base_ext = seq - 1
                self._received = 2
                self._seen = 3
                self._transit = None
            else:
                self._bad_seq = (seq + 1) & 0xFFFF
                return

        # RFC 3550 A.8 interarrival jitter, in timestamp units.
        transit = now * self._clock_rate - timestamp
        previous = self._transit
        self._transit = transit
        if previous is None:
            return
        d = transit - previous
        if d < 0:
            d = -d
        if d > _TS_HALF:
            d %= _TS_MOD
            if d > _TS_HALF:
                d = _TS_MOD - d
        if d > _DISCONTINUITY_S * self._clock_rate:
            return
        jitter = self._jitter + (d - self._jitter) / 16.0
        self._jitter = jitter
        if jitter > self._max_jitter:
            self._max_jitter = jitter

    def _add_silence(self, start: float, end: float) -> None:
        self._silent_count += 1
        self._silent_seconds += end - start
        if len(self._silent) < self._max_stretches:
            self._silent.append((start, end))

    def pause(self, now: float) -> None:
        """Recording paused (signalled): gaps from now on are not silent stretches."""
        if self._paused_now:
            return
        gap_from = self._gap_from
        if gap_from is not None and now - gap_from > self._gap_threshold:
            self._add_silence(gap_from, now)
        self._paused_now = True
        if len(self._paused) < self._max_paused:
            self._paused.append((now, None))
        else:
            # Out of room: reopen the last interval. Over-marking a pause is the safe
            # side, since pauses keep card numbers and the like out of the recording.
            self._paused[-1] = (self._paused[-1][0], None)

    def resume(self, now: float) -> None:
        """Recording resumed (signalled)."""
        if not self._paused_now:
            return
        self._paused_now = False
        self._paused[-1] = (self._paused[-1][0], now)
        self._gap_from = now
        self._resumed = True

    @property
    def paused(self) -> bool:
        return self._paused_now

    def snapshot(self, now: float | None = None) -> StreamStatsSnapshot:
        """The counters now; with ``now``, a silent stretch still open is included."""
        run_expected, run_received = self._run_counts()
        # Packets sent while recording was paused were never expected to be recorded.
        expected = self._prior_expected + run_expected - self._skipped
        received = self._prior_received + run_received
        cumulative_lost = expected - received
        lost = max(0, cumulative_lost)
        stretches = list(self._silent)
        count = self._silent_count
        seconds = self._silent_seconds
        gap_from = self._gap_from
        if (
            now is not None
            and gap_from is not None
            and not self._paused_now
            and now - gap_from > self._gap_threshold
        ):
            count += 1
            seconds += now - gap_from
            if len(stretches) < self._max_stretches:
                stretches.append((gap_from, now))
        to_ms = 1000.0 / self._clock_rate
        return StreamStatsSnapshot(
            clock_rate=self._clock_rate,
            ssrc=self._ssrc,
            ssrc_changes=self._ssrc_changes,
            packets=self._packets,
            bytes_received=self._bytes,
            garbage=self._garbage,
            first_packet_at=self._first_at,
            last_packet_at=self._last_at,
            highest_sequence=None if self._ssrc is None else self._cycles + self._max_seq,
            expected=expected,
            received=received,
            cumulative_lost=cumulative_lost,
            lost=lost,
            loss_ratio=lost / expected if expected else 0.0,
            duplicates=self._duplicates,
            reordered=self._reordered,
            jitter_ms=self._jitter * to_ms,
            max_jitter_ms=self._max_jitter * to_ms,
            silent_stretches=tuple(stretches),
            silent_stretch_count=count,
            silent_seconds=seconds,
            paused=tuple(self._paused),
        )
