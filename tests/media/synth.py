"""Synthetic audio and RTP streams for the media tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import numpy as np
import numpy.typing as npt

from callvault.media.g711 import encode_alaw, encode_ulaw
from callvault.media.timeline import StreamPacket
from callvault.rtp.packet import RtpPacket

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def encode(pcm: npt.NDArray[np.int16], codec: str) -> bytes:
    return encode_ulaw(pcm) if codec == "PCMU" else encode_alaw(pcm)


def frames(pcm: npt.NDArray[np.int16], codec: str = "PCMU") -> list[bytes]:
    return [encode(pcm[i : i + FRAME], codec) for i in range(0, len(pcm), FRAME)]


def stream_packets(
    payloads: list[bytes],
    *,
    t0: float,
    seq0: int = 1000,
    ts0: int = 50_000,
    ssrc: int = 0xABCD,
    payload_type: int = 0,
) -> list[StreamPacket]:
    """One packet per payload, 20 ms apart, arrival exactly on time."""
    return [
        StreamPacket(
            t0 + 0.02 * i,
            (seq0 + i) & 0xFFFF,
            (ts0 + FRAME * i) & 0xFFFFFFFF,
            ssrc,
            payload_type,
            payload,
        )
        for i, payload in enumerate(payloads)
    ]


def to_rtp(packet: StreamPacket) -> bytes:
    return bytes(
        RtpPacket(
            packet.payload_type,
            packet.sequence_number,
            packet.timestamp,
            packet.ssrc,
            payload=packet.payload,
            marker=packet.marker,
        )
    )


def peak_frequency(pcm: npt.NDArray[np.int16]) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / RATE)[int(np.argmax(spectrum))])


def rms(pcm: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def true_time(sample: npt.ArrayLike, *, t0: float, ppm: float = 0.0) -> npt.NDArray[np.float64]:
    """When a sender whose clock runs ``ppm`` fast captured its sample number ``sample``."""
    return t0 + np.asarray(sample, dtype=np.float64) / (RATE * (1 + ppm * 1e-6))


def network_packets(
    payloads: list[bytes],
    *,
    t0: float,
    rng: np.random.Generator,
    ppm: float = 0.0,
    delay: float = 0.0,
    jitter: float = 0.0,
    spikes: float = 0.0,
    loss: float = 0.0,
    delay_steps: tuple[tuple[float, float], ...] = (),
    ssrc: int = 0xABCD,
    seq0: int = 1000,
    ts0: int = 50_000,
    payload_type: int = 0,
) -> tuple[list[StreamPacket], npt.NDArray[np.bool_]]:
    """One 20 ms packet per payload from a sender whose clock runs ``ppm`` fast, through
    a network: ``delay`` plus one-sided jitter uniform in [0, ``jitter``], 100 ms more on
    a ``spikes`` fraction of packets, ``delay_steps`` ((true time, added delay): a path
    change), and a ``loss`` fraction dropped. Returns the packets in arrival order and
    which payloads arrived.
    """
    count = len(payloads)
    sent = true_time(np.arange(count) * FRAME, t0=t0, ppm=ppm)
    late = delay + rng.uniform(0.0, jitter, count) + 0.1 * (rng.random(count) < spikes)
    for when, added in delay_steps:
        late += np.where(sent >= when, added, 0.0)
    arrival = sent + late
    received = rng.random(count) >= loss
    order = np.flatnonzero(received)
    order = order[np.argsort(arrival[order], kind="stable")]
    packets = [
        StreamPacket(
            float(arrival[i]),
            (seq0 + i) & 0xFFFF,
            (ts0 + FRAME * i) & 0xFFFFFFFF,
            ssrc,
            payload_type,
            payloads[i],
        )
        for i in order.tolist()
    ]
    return packets, received


class Linear16:
    """A test codec: big-endian 16-bit samples, so every sample value is exact."""

    sample_rate = 8000

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return np.frombuffer(payload, dtype=">i2").astype(np.int16)


class Wide16(Linear16):
    """The same at 16 kHz: 320 samples per 20 ms (like G.722 on its 8000 Hz clock)."""

    sample_rate = 16000


def numbered(count: int, first: int = 0, per_frame: int = FRAME) -> list[bytes]:
    """``Linear16`` frames ``first`` to ``count - 1``; frame i holds samples of value
    i + 1, so where a frame lands is visible."""
    return [np.full(per_frame, i + 1, dtype=">i2").tobytes() for i in range(first, count)]


def numbered_pcm(count: int, missing: Collection[int] = ()) -> npt.NDArray[np.int16]:
    """What ``numbered(count)`` renders to at 8 kHz, silent where frames are missing."""
    return np.concatenate(
        [np.full(FRAME, 0 if i in missing else i + 1, dtype=np.int16) for i in range(count)]
    )


def shifted(packets: list[StreamPacket], seconds: float) -> list[StreamPacket]:
    return [dataclasses.replace(p, arrival=p.arrival + seconds) for p in packets]


def by_arrival(packets: list[StreamPacket]) -> list[StreamPacket]:
    return sorted(packets, key=lambda p: p.arrival)
