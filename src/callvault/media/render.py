"""Render a session capture into a playable WAV file: one or two channels, each a mix of
one or more streams.

A stream is found in the capture by its destination port (the recorder's local RTP
port for it) and its payload type; other packets on that port (telephone-event, comfort
noise, RTCP, garbage) are left out. Each stream is placed on the wall-clock timeline
(``timeline.place_stream``), decoded, silenced where paused, and the streams of a
channel are summed with clipping. Streams protected with SRTP carry their suite and key
so they can be decrypted here, since the capture holds packets as received.

Only G.711 is decoded for now; any other codec raises ``UnsupportedCodec`` before the
capture is read. Everything is held in memory as int16 (115 MB for two hours of 8 kHz
stereo), which is acceptable for now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callvault.media.g711 import AlawDecoder, UlawDecoder
from callvault.media.timeline import (
    Decoder,
    RenderedStream,
    StreamPacket,
    merge_ranges,
    place_stream,
    render_stream,
)
from callvault.media.wav import write_wav
from callvault.rtp.packet import RtpError, is_rtcp, parse_rtp
from callvault.rtp.pcap import read_pcap
from callvault.rtp.srtp import SrtpError, SrtpReceiver

__all__ = [
    "DECODERS",
    "ChannelSpec",
    "ChannelStats",
    "RenderResult",
    "StreamRenderStats",
    "StreamSelector",
    "UnsupportedCodec",
    "decoder_for",
    "render_stereo_wav",
]

#: Codec name (SDP rtpmap encoding name, upper case) -> decoder factory.
DECODERS: dict[str, Callable[[], Decoder]] = {"PCMU": UlawDecoder, "PCMA": AlawDecoder}


class UnsupportedCodec(ValueError):
    """A stream's codec cannot be decoded (yet)."""


def decoder_for(codec: str, clock_rate: int) -> Decoder:
    factory = DECODERS.get(codec.upper())
    if factory is None:
        raise UnsupportedCodec(f"codec {codec!r} cannot be decoded yet (only PCMU and PCMA)")
    decoder = factory()
    if clock_rate != decoder.sample_rate:
        raise UnsupportedCodec(f"{codec} at {clock_rate} Hz is not supported (8000 Hz only)")
    return decoder


@dataclass(frozen=True, slots=True)
class StreamSelector:
    """One received stream: its local RTP port, negotiated codec and pauses.

    ``srtp`` is ``(crypto suite, master key and salt)`` when the stream was SRTP.
    """

    local_port: int
    codec: str
    payload_type: int
    clock_rate: int = 8000
    paused: Sequence[tuple[float, float | None]] = ()
    srtp: tuple[str, bytes] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paused", tuple(self.paused))


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One output channel: the streams mixed into it."""

    streams: Sequence[StreamSelector]

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(self.streams))


@dataclass(frozen=True, slots=True)
class StreamRenderStats:
    """``undecodable``: datagrams that were not RTP, or SRTP failing authentication or
    the replay check; ``skipped``: RTP of another payload type (DTMF, comfort noise)."""

    local_port: int
    packets_used: int
    duplicates: int
    skipped: int
    undecodable: int
    segments: int


@dataclass(frozen=True, slots=True)
class ChannelStats:
    packets_used: int
    silence_ratio: float
    streams: tuple[StreamRenderStats, ...]


@dataclass(frozen=True, slots=True)
class RenderResult:
    duration_s: float
    sample_rate: int
    channels: int
    samples: int
    start: float
    end: float
    channel_stats: tuple[ChannelStats, ...]


def render_stereo_wav(
    capture: Path,
    channels: Sequence[ChannelSpec],
    output: Path,
    *,
    start: float | None = None,
    end: float | None = None,
) -> RenderResult:
    """Render ``channels`` (one: mono, two: stereo) from ``capture`` into ``output``.

    Without ``start`` / ``end`` the file spans the first to the last sample of all the
    selected streams.
    """
    if len(channels) not in (1, 2):
        raise ValueError(f"render_stereo_wav takes one or two channels, got {len(channels)}")
    selectors = list(dict.fromkeys(s for channel in channels for s in channel.streams))
    decoders = {s: decoder_for(s.codec, s.clock_rate) for s in selectors}
    rates = {d.sample_rate for d in decoders.values()}
    if len(rates) > 1:
        raise UnsupportedCodec("streams with different sample rates cannot be mixed yet")
    sample_rate = rates.pop() if rates else 8000

    wanted = {s.local_port for s in selectors}
    by_port: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    for packet in read_pcap(capture):
        if packet.dst[1] in wanted:
            by_port[packet.dst[1]].append((packet.ts, packet.payload))

    placements = {}
    undecodable: dict[StreamSelector, int] = {}
    for selector in selectors:
        packets, bad = _stream_packets(selector, by_port.get(selector.local_port, []))
        undecodable[selector] = bad
        placements[selector] = place_stream(
            packets, payload_type=selector.payload_type, clock_rate=selector.clock_rate
        )

    spans = [p.span(decoders[s]) for s, p in placements.items()]
    found = [span for span in spans if span is not None]
    if start is None:
        start = min((a for a, _ in found), default=end if end is not None else 0.0)
    if end is None:
        end = max((b for _, b in found), default=start)
    end = max(end, start)

    rendered: dict[StreamSelector, RenderedStream] = {
        s: render_stream(p, decoders[s], start=start, end=end, paused=s.paused)
        for s, p in placements.items()
    }
    total = max(0, round((end - start) * sample_rate))
    outputs = []
    stats = []
    for channel in channels:
        streams = [rendered[s] for s in channel.streams]
        if len(streams) == 1:
            mixed = streams[0].pcm
        else:
            acc = np.zeros(total, dtype=np.int32)
            for stream in streams:
                acc += stream.pcm
            mixed = np.clip(acc, -32768, 32767).astype(np.int16)
        covered = merge_ranges(r for stream in streams for r in stream.covered)
        silence = 1.0 - sum(b - a for a, b in covered) / total if total else 0.0
        outputs.append(mixed)
        stats.append(
            ChannelStats(
                packets_used=sum(stream.packets_used for stream in streams),
                silence_ratio=silence,
                streams=tuple(
                    StreamRenderStats(
                        local_port=s.local_port,
                        packets_used=rendered[s].packets_used,
                        duplicates=placements[s].duplicates,
                        skipped=placements[s].skipped,
                        undecodable=undecodable[s],
                        segments=len(placements[s].segments),
                    )
                    for s in channel.streams
                ),
            )
        )
    write_wav(output, outputs, sample_rate)
    return RenderResult(
        duration_s=total / sample_rate,
        sample_rate=sample_rate,
        channels=len(channels),
        samples=total,
        start=start,
        end=end,
        channel_stats=tuple(stats),
    )


def _stream_packets(
    selector: StreamSelector, datagrams: list[tuple[float, bytes]]
) -> tuple[list[StreamPacket], int]:
    """The RTP packets among a port's datagrams (decrypted if SRTP); count the rest."""
    receiver = SrtpReceiver(*selector.srtp) if selector.srtp is not None else None
    packets = []
    bad = 0
    for arrival, data in datagrams:
        if is_rtcp(data):
            continue
        try:
            plain = receiver.unprotect(data) if receiver is not None else data
            rtp = parse_rtp(plain)
        except (RtpError, SrtpError):
            bad += 1
            continue
        packets.append(
            StreamPacket(
                arrival,
                rtp.sequence_number,
                rtp.timestamp,
                rtp.ssrc,
                rtp.payload_type,
                rtp.payload,
                rtp.marker,
            )
        )
    return packets, bad
