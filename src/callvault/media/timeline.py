"""Put one stream's packets on the session's wall-clock timeline as 16-bit PCM.

Theory of operation. Packets come in arrival order. They are grouped by SSRC; within
one SSRC the 32-bit RTP timestamps are unwrapped, and the packets are cut into
*segments* that share one mapping from RTP time to wall time. A packet whose offset
``arrival - timestamp / clock_rate`` differs from every segment of its SSRC by more
than ``max_jump`` seconds (a timestamp jump: hold without timestamps advancing, a
sender restart, a new source behind the same SSRC) starts a new segment. Each segment
is anchored by the *minimum* offset over its packets: the packet that crossed the
network fastest, so queueing delay and jitter do not push audio late. Within a segment
placement is integer arithmetic on timestamps, so consecutive frames meet exactly.

Gaps (loss, DTX, hold) stay silent, duplicates (same sequence number and timestamp)
are dropped, paused intervals are forced to silence. Packets of other payload types
(telephone-event, comfort noise) are counted and skipped: they are not audio.

Known limit: one anchor per segment does not follow clock drift between the sender
and the recorder (50 ppm is 0.36 s over two hours); re-anchoring belongs to the full
media pipeline. Codecs plug in through the ``Decoder`` protocol. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "Decoder",
    "RenderedStream",
    "StreamPacket",
    "StreamPlacement",
    "TimelineSegment",
    "merge_ranges",
    "place_stream",
    "render_stream",
    "subtract_ranges",
]

Pcm = npt.NDArray[np.int16]
SampleRange = tuple[int, int]


class Decoder(Protocol):
    """Turns one RTP payload into mono int16 samples at ``sample_rate``."""

    @property
    def sample_rate(self) -> int: ...

    def decode(self, payload: bytes) -> Pcm: ...


@dataclass(frozen=True, slots=True)
class StreamPacket:
    """One received RTP packet of a stream, as the timeline needs it."""

    arrival: float
    sequence_number: int
    timestamp: int
    ssrc: int
    payload_type: int
    payload: bytes
    marker: bool = False


@dataclass(frozen=True, slots=True)
class TimelineSegment:
    """Frames of one SSRC sharing one anchor: wall time of ``frames`` offset 0."""

    ssrc: int
    anchor: float
    frames: tuple[tuple[int, bytes], ...]  # (unwrapped timestamp, payload), sorted

    def start(self, clock_rate: int) -> float:
        return self.anchor + self.frames[0][0] / clock_rate


@dataclass(frozen=True, slots=True)
class StreamPlacement:
    """A stream's audio frames, anchored on wall time, not yet decoded."""

    clock_rate: int
    segments: tuple[TimelineSegment, ...]
    packets_used: int
    duplicates: int
    skipped: int

    def span(self, decoder: Decoder) -> tuple[float, float] | None:
        """Wall time of the first sample and just after the last one; None if empty."""
        if not self.segments:
            return None
        first = min(seg.start(self.clock_rate) for seg in self.segments)
        last = first
        for seg in self.segments:
            stamp, payload = seg.frames[-1]
            samples = len(decoder.decode(payload))
            last = max(last, seg.anchor + stamp / self.clock_rate + samples / decoder.sample_rate)
        return first, last


@dataclass(frozen=True, slots=True)
class RenderedStream:
    """A stream's PCM over [start, end) and the sample ranges that hold received audio."""

    pcm: Pcm = field(repr=False)
    sample_rate: int
    covered: tuple[SampleRange, ...]
    packets_used: int

    @property
    def silence_ratio(self) -> float:
        total = len(self.pcm)
        if not total:
            return 0.0
        return 1.0 - sum(b - a for a, b in self.covered) / total


class _Segment:
    __slots__ = ("frames", "offset")

    def __init__(self, offset: float) -> None:
        self.offset = offset  # minimum of arrival - timestamp / clock_rate so far
        self.frames: list[tuple[int, bytes]] = []


class _Source:
    __slots__ = ("last_seq", "last_ts", "seen", "segments", "seq", "ts")

    def __init__(self, packet: StreamPacket) -> None:
        self.last_ts = packet.timestamp
        self.last_seq = packet.sequence_number
        self.ts = 0
        self.seq = 0
        self.seen: set[tuple[int, int]] = set()
        self.segments: list[_Segment] = []


def _signed(delta: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return ((delta + half) & ((1 << bits) - 1)) - half


def place_stream(
    packets: Iterable[StreamPacket],
    *,
    payload_type: int,
    clock_rate: int,
    max_jump: float = 1.0,
) -> StreamPlacement:
    """Group, unwrap, de-duplicate and anchor the packets of one stream."""
    sources: dict[int, _Source] = {}
    used = duplicates = skipped = 0
    for packet in packets:
        if packet.payload_type != payload_type:
            skipped += 1
            continue
        source = sources.get(packet.ssrc)
        if source is None:
            source = sources[packet.ssrc] = _Source(packet)
        else:
            source.ts += _signed(packet.timestamp - source.last_ts, 32)
            source.seq += _signed(packet.sequence_number - source.last_seq, 16)
            source.last_ts, source.last_seq = packet.timestamp, packet.sequence_number
        key = (source.seq, source.ts)
        if key in source.seen:
            duplicates += 1
            continue
        source.seen.add(key)
        offset = packet.arrival - source.ts / clock_rate
        # Most recent segment first: a straggler usually belongs to the current one.
        for segment in reversed(source.segments):
            if abs(offset - segment.offset) <= max_jump:
                break
        else:
            segment = _Segment(offset)
            source.segments.append(segment)
        segment.offset = min(segment.offset, offset)
        segment.frames.append((source.ts, packet.payload))
        used += 1

    segments = [
        TimelineSegment(ssrc, seg.offset, tuple(sorted(seg.frames, key=lambda f: f[0])))
        for ssrc, source in sources.items()
        for seg in source.segments
    ]
    segments.sort(key=lambda s: s.start(clock_rate))
    return StreamPlacement(clock_rate, tuple(segments), used, duplicates, skipped)


def render_stream(
    placement: StreamPlacement,
    decoder: Decoder,
    *,
    start: float,
    end: float,
    paused: Sequence[tuple[float, float | None]] = (),
) -> RenderedStream:
    """Decode a placed stream into PCM covering [start, end) at the decoder's rate."""
    rate = decoder.sample_rate
    clock = placement.clock_rate
    total = max(0, round((end - start) * rate))
    pcm = np.zeros(total, dtype=np.int16)
    ranges: list[SampleRange] = []
    used = 0
    for segment in placement.segments:
        base = round((segment.anchor - start) * rate)
        for stamp, payload in segment.frames:
            position = base + stamp * rate // clock
            if position >= total:
                break
            samples = decoder.decode(payload)
            stop = min(position + len(samples), total)
            first = max(position, 0)
            if stop <= first:
                continue
            pcm[first:stop] = samples[first - position : stop - position]
            ranges.append((first, stop))
            used += 1
    silenced = []
    for pause_start, pause_end in paused:
        a = min(max(round((pause_start - start) * rate), 0), total)
        b = total if pause_end is None else min(max(round((pause_end - start) * rate), 0), total)
        if b > a:
            pcm[a:b] = 0
            silenced.append((a, b))
    covered = subtract_ranges(merge_ranges(ranges), merge_ranges(silenced))
    return RenderedStream(pcm, rate, tuple(covered), used)


def merge_ranges(ranges: Iterable[SampleRange]) -> list[SampleRange]:
    """Sorted, non-overlapping union of half-open ranges."""
    out: list[SampleRange] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract_ranges(
    ranges: Sequence[SampleRange], holes: Sequence[SampleRange]
) -> list[SampleRange]:
    """``ranges`` minus ``holes``; both sorted and non-overlapping (``merge_ranges``)."""
    out: list[SampleRange] = []
    j = 0
    for a, b in ranges:
        while j < len(holes) and holes[j][1] <= a:
            j += 1
        k = j
        while a < b and k < len(holes) and holes[k][0] < b:
            if holes[k][0] > a:
                out.append((a, holes[k][0]))
            a = max(a, holes[k][1])
            k += 1
        if a < b:
            out.append((a, b))
    return out
