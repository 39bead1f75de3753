"""Synthetic audio and RTP streams for the media tests."""

from __future__ import annotations

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
