"""A recording session's audio, stream by stream, from its capture file.

The capture holds every datagram as received (REQUIREMENTS X3). A stream is found in it
by its destination port (the recorder's local RTP port for it); RTCP and anything that
is not RTP is counted and left out. Each stream's packets are decoded by their own
payload type (a re-INVITE may have changed the codec mid-stream), telephone-events
become DTMF marks, comfort noise stays silence, and the result is placed on the
session's wall-clock timeline (``timeline``) at the stream's natural rate, then
resampled to the recording's rate. Lost packets are concealed (``conceal``). Mixing
is a sum with clipping.

Everything is held in memory as int16 (a two-hour 8 kHz stream is 115 MB); no I/O but
reading the capture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from callvault.media.conceal import conceal_losses
from callvault.media.decoders import NON_AUDIO, PayloadDecoder, audio_rate, decoder_for
from callvault.media.dtmf import DtmfEvent, collect_dtmf
from callvault.media.timeline import StreamPacket, merge_ranges, place_stream, render_stream
from callvault.rtp.packet import RtpError, is_rtcp, parse_rtp
from callvault.rtp.pcap import read_pcap

__all__ = [
    "DecodedStream",
    "PayloadFormat",
    "StreamSource",
    "decode_stream",
    "mix",
    "read_capture",
    "resample",
    "stream_rate",
]

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """What one payload type of a stream carries (``Stream.payload_types``)."""

    codec: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    @property
    def is_audio(self) -> bool:
        return self.codec.lower() not in NON_AUDIO


@dataclass(frozen=True, slots=True)
class StreamSource:
    """One received stream: where it is in the capture and how to decode it."""

    key: int
    local_port: int
    payload_types: Mapping[int, PayloadFormat]
    paused: tuple[tuple[float, float | None], ...] = ()


@dataclass(slots=True)
class DecodedStream:
    key: int
    pcm: Pcm = field(repr=False)
    sample_rate: int
    start: float
    covered: list[tuple[int, int]]
    dtmf: list[DtmfEvent]
    packets: int
    used: int
    undecodable: int
    skipped: int
    unsupported: dict[str, int]
    concealed: int = 0  # gaps (lost packets) filled from the audio before them

    @property
    def seconds_covered(self) -> float:
        return sum(b - a for a, b in self.covered) / self.sample_rate


@dataclass(slots=True)
class CaptureStreams:
    """The RTP packets of each wanted port, and what else the capture held."""

    packets: dict[int, list[StreamPacket]]
    not_rtp: int = 0
    rtcp: int = 0


def read_capture(capture: Path, ports: Collection[int]) -> CaptureStreams:
    """Read the capture once; group RTP packets by destination port (arrival order)."""
    wanted = set(ports)
    out = CaptureStreams({port: [] for port in wanted})
    for datagram in read_pcap(capture):
        port = datagram.dst[1]
        if port not in wanted:
            continue
        data = datagram.payload
        if is_rtcp(data):
            out.rtcp += 1
            continue
        try:
            rtp = parse_rtp(data)
        except RtpError:
            out.not_rtp += 1
            continue
        out.packets[port].append(
            StreamPacket(
                datagram.ts,
                rtp.sequence_number,
                rtp.timestamp,
                rtp.ssrc,
                rtp.payload_type,
                rtp.payload,
                rtp.marker,
            )
        )
    return out


def stream_rate(source: StreamSource) -> int:
    """The sample rate a stream's audio has: the highest of its audio payload types."""
    rates = [
        audio_rate(f.codec, f.clock_rate, f.fmtp)
        for f in source.payload_types.values()
        if f.is_audio and _decodable(f)
    ]
    return max(rates, default=8000)


def _decodable(fmt: PayloadFormat) -> bool:
    try:
        decoder_for(fmt.codec, fmt.clock_rate, fmt.fmtp, fmt.channels)
    except ValueError:
        return False
    return True


def decode_stream(
    source: StreamSource,
    packets: Sequence[StreamPacket],
    *,
    sample_rate: int,
    start: float,
    end: float,
) -> DecodedStream:
    """Decode ``source`` over [start, end) at ``sample_rate`` (resampled if needed)."""
    audio: dict[int, PayloadFormat] = {}
    unsupported: dict[str, int] = defaultdict(int)
    factories: dict[int, Callable[[], PayloadDecoder]] = {}
    for pt, fmt in source.payload_types.items():
        if not fmt.is_audio or not _decodable(fmt):
            continue
        audio[pt] = fmt
        factories[pt] = _factory(fmt)
    dtmf: list[DtmfEvent] = []
    for pt, fmt in source.payload_types.items():
        if fmt.codec.lower() == "telephone-event":
            dtmf += collect_dtmf(packets, payload_type=pt, clock_rate=fmt.clock_rate)
    known = set(source.payload_types)
    for packet in packets:
        pt = packet.payload_type
        if pt in known and pt not in audio and source.payload_types[pt].is_audio:
            unsupported[source.payload_types[pt].codec] += 1
    native = stream_rate(source)
    placement = place_stream(packets, clock_rates={pt: f.clock_rate for pt, f in audio.items()})
    rendered = render_stream(
        placement, factories, sample_rate=native, start=start, end=end, paused=source.paused
    )
    pcm = rendered.pcm
    covered = list(rendered.covered)
    paused = [
        (round((a - start) * native), round(((b if b is not None else end) - start) * native))
        for a, b in source.paused
    ]
    concealed = conceal_losses(pcm, covered, native, keep_silent=paused)
    if native != sample_rate:
        pcm = resample(pcm, native, sample_rate)
        covered = merge_ranges(
            (a * sample_rate // native, b * sample_rate // native) for a, b in covered
        )
    return DecodedStream(
        key=source.key,
        pcm=pcm,
        sample_rate=sample_rate,
        start=start,
        covered=covered,
        dtmf=dtmf,
        packets=len(packets),
        used=rendered.packets_used,
        undecodable=rendered.undecodable,
        skipped=placement.skipped,
        unsupported=dict(unsupported),
        concealed=concealed,
    )


def _factory(fmt: PayloadFormat) -> Callable[[], PayloadDecoder]:
    def make() -> PayloadDecoder:
        return decoder_for(fmt.codec, fmt.clock_rate, fmt.fmtp, fmt.channels)

    return make


def resample(pcm: Pcm, from_rate: int, to_rate: int) -> Pcm:
    """Mono int16 from one rate to another (libswresample), same duration exactly."""
    if from_rate == to_rate or not len(pcm):
        return pcm
    wanted = len(pcm) * to_rate // from_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    out: list[Pcm] = []
    step = from_rate * 10  # 10 s per frame keeps memory flat and calls few
    for offset in range(0, len(pcm), step):
        chunk = np.ascontiguousarray(pcm[offset : offset + step]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = from_rate
        out += [_samples(f) for f in resampler.resample(frame)]
    out += [_samples(f) for f in resampler.resample(None)]
    joined = np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
    if len(joined) >= wanted:
        return joined[:wanted].astype(np.int16, copy=False)
    return np.pad(joined, (0, wanted - len(joined))).astype(np.int16, copy=False)


def _samples(frame: av.AudioFrame) -> Pcm:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


def mix(streams: Sequence[Pcm], samples: int) -> Pcm:
    """Sum streams into one channel of ``samples`` samples, clipping instead of wrapping."""
    if len(streams) == 1 and len(streams[0]) == samples:
        return streams[0]
    acc = np.zeros(samples, dtype=np.int32)
    for pcm in streams:
        n = min(len(pcm), samples)
        acc[:n] += pcm[:n]
    return np.clip(acc, -32768, 32767).astype(np.int16)
