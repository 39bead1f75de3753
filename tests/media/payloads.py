"""Test-side RTP payload encoders: int16 PCM in, one RTP payload per packet out.

For the media tests, the bench and golden captures. Every ``encode_*`` function takes
mono int16 PCM at the codec's input rate (zero-padded here to whole packets) and
returns an ``EncodedStream``: the payloads, each one's RTP timestamp offset, and the
SDP description a decoder needs. ``EncodedStream.packets()`` makes ``StreamPacket``s
of them, ``write_capture`` writes packets to a pcap file as the recorder does.

    encode_pcmu, encode_pcma   8 kHz    callvault.media.g711
    encode_g722               16 kHz    PyAV's g722 encoder (RTP clock 8000)
    encode_opus     8-48 kHz, mono/stereo PyAV's libopus (RTP clock 48000)
    encode_gsm                 8 kHz    libsndfile GSM 06.10, 33-byte frames
    encode_amr                 8 kHz    PyAV's libopencore_amrnb, modes 0-7, DTX
    encode_amr_wb             16 kHz    libvo-amrwbenc (ctypes), modes 0-8, DTX
    encode_g729                8 kHz    libbcg729 (ctypes), VAD/DTX with Annex B SID
    pack_amr                  RFC 4867 payload from storage-format frames (both modes)
    dtmf_packets              RFC 4733 telephone-event packets for a digit string

The AMR packer and the telephone-event payloads are written independently of
callvault's parsers (bit strings, struct) so that each checks the other. Signals and
measures for assertions: ``tone``, ``two_tone``, ``chirp``, ``dominant_frequency``,
``aligned_snr``.
"""

from __future__ import annotations

import ctypes
import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
import soundfile
from av.audio.codeccontext import AudioCodecContext

from callvault.media.g711 import encode_alaw, encode_ulaw
from callvault.media.timeline import StreamPacket
from callvault.rtp.pcap import PcapWriter
from tests.media.synth import to_rtp

Pcm = npt.NDArray[np.int16]
Address = tuple[str, int]

#: Speech bits per frame type, from 3GPP TS 26.101 / 26.201 table 1a (SID last).
AMR_BITS = (95, 103, 118, 134, 148, 159, 204, 244, 39)
AMR_WB_BITS = (132, 177, 253, 285, 317, 365, 397, 461, 477, 40)
AMR_BITRATES = (4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200)
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True)
class EncodedStream:
    """Payloads of one RTP source and what SDP would say about them."""

    codec: str  # SDP encoding name
    clock_rate: int  # RTP clock rate
    payloads: list[bytes]
    timestamps: list[int]  # RTP timestamp of each payload, from 0 at the first sample
    fmtp: str | None = None
    channels: int = 1

    def packets(
        self,
        *,
        t0: float,
        ssrc: int = 0x5EC0_1234,
        payload_type: int = 96,
        seq0: int = 1000,
        ts0: int = 50_000,
    ) -> list[StreamPacket]:
        """One packet per payload, arriving exactly when its first sample is due."""
        return [
            StreamPacket(
                t0 + offset / self.clock_rate,
                (seq0 + i) & 0xFFFF,
                (ts0 + offset) & 0xFFFFFFFF,
                ssrc,
                payload_type,
                payload,
                marker=i == 0,
            )
            for i, (offset, payload) in enumerate(zip(self.timestamps, self.payloads, strict=True))
        ]


def _whole(pcm: npt.ArrayLike, block: int) -> Pcm:
    samples = np.asarray(pcm, dtype=np.int16)
    return np.concatenate([samples, np.zeros(-len(samples) % block, dtype=np.int16)])


def _evenly(
    codec: str, clock: int, payloads: list[bytes], step: int, fmtp: str | None = None
) -> EncodedStream:
    return EncodedStream(codec, clock, payloads, [i * step for i in range(len(payloads))], fmtp)


# --- G.711, G.722, GSM ------------------------------------------------------------------


def encode_pcmu(pcm: npt.ArrayLike, *, ptime: int = 20) -> EncodedStream:
    size = 8 * ptime
    samples = _whole(pcm, size)
    chunks = [encode_ulaw(samples[i : i + size]) for i in range(0, len(samples), size)]
    return _evenly("PCMU", 8000, chunks, size)


def encode_pcma(pcm: npt.ArrayLike, *, ptime: int = 20) -> EncodedStream:
    size = 8 * ptime
    samples = _whole(pcm, size)
    chunks = [encode_alaw(samples[i : i + size]) for i in range(0, len(samples), size)]
    return _evenly("PCMA", 8000, chunks, size)


def _av_encoder(name: str, rate: int, layout: str = "mono") -> AudioCodecContext:
    context = cast(AudioCodecContext, av.CodecContext.create(name, "w"))
    context.sample_rate = rate
    context.layout = layout
    context.format = "s16"
    return context


def _av_encode(context: AudioCodecContext, pcm: Pcm, block: int, channels: int = 1) -> list[bytes]:
    """Feed ``block`` samples per frame; one bytes per packet the encoder emits."""
    layout = "mono" if channels == 1 else "stereo"
    out: list[bytes] = []
    for start in range(0, len(pcm), block):
        chunk = np.ascontiguousarray(pcm[start : start + block]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
        frame.sample_rate = context.sample_rate
        frame.pts = start
        out += [bytes(packet) for packet in context.encode(frame)]
    return out


def encode_g722(pcm: npt.ArrayLike, *, ptime: int = 20) -> EncodedStream:
    """16 kHz PCM; G.722 is a byte stream (two samples per byte), cut per ``ptime``."""
    samples = _whole(pcm, 16 * ptime)
    context = _av_encoder("g722", 16000)
    context.open()
    data = b"".join(_av_encode(context, samples, 320)) + b"".join(map(bytes, context.encode()))
    assert len(data) * 2 == len(samples)
    size = 8 * ptime
    return _evenly("G722", 8000, [data[i : i + size] for i in range(0, len(data), size)], size)


def encode_gsm(pcm: npt.ArrayLike, *, ptime: int = 20) -> EncodedStream:
    """8 kHz PCM through libsndfile's GSM 06.10 (raw: 33 bytes per 160 samples)."""
    samples = _whole(pcm, 8 * ptime)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 8000, format="RAW", subtype="GSM610")
    data = buffer.getvalue()
    size = 33 * (ptime // 20)
    assert len(data) == 33 * len(samples) // 160
    return _evenly("GSM", 8000, [data[i : i + size] for i in range(0, len(data), size)], 8 * ptime)


# --- Opus -------------------------------------------------------------------------------


def encode_opus(
    pcm: npt.ArrayLike,
    *,
    rate: int = 16000,
    ptime: int = 20,
    bitrate: int = 32000,
    stereo: bool = False,
    fmtp: str | None = None,
) -> EncodedStream:
    """PCM at ``rate`` (shape (n,) or (n, 2) for ``stereo``) through libopus.

    The encoder is flushed, so the payloads cover its look-ahead too: one more packet
    than the input fills. The SDP is opus/48000/2 either way (RFC 7587).
    """
    channels = 2 if stereo else 1
    block = rate * ptime // 1000
    samples = np.asarray(pcm, dtype=np.int16).reshape(-1, channels)
    samples = np.concatenate([samples, np.zeros((-len(samples) % block, channels), np.int16)])
    context = _av_encoder("libopus", rate, "stereo" if stereo else "mono")
    context.bit_rate = bitrate
    context.options = {"application": "voip", "frame_duration": str(ptime)}
    context.open()
    payloads = _av_encode(context, samples, block, channels)
    payloads += [bytes(packet) for packet in context.encode()]
    timestamps = [i * 48 * ptime for i in range(len(payloads))]
    return EncodedStream("opus", 48000, payloads, timestamps, fmtp, channels=2)


# --- AMR, AMR-WB ------------------------------------------------------------------------


def amr_storage_frames(pcm: npt.ArrayLike, *, mode: int = 7, dtx: bool = False) -> list[bytes]:
    """AMR-NB storage-format frames (header octet + bits), one per 20 ms of 8 kHz PCM."""
    context = _av_encoder("libopencore_amrnb", 8000)
    context.bit_rate = AMR_BITRATES[mode]
    context.options = {"dtx": "1" if dtx else "0"}
    context.open()
    return _av_encode(context, _whole(pcm, 160), 160)


def amr_wb_storage_frames(pcm: npt.ArrayLike, *, mode: int = 8, dtx: bool = False) -> list[bytes]:
    """AMR-WB storage-format frames, one per 20 ms of 16 kHz PCM (libvo-amrwbenc)."""
    library = ctypes.CDLL("libvo-amrwbenc.so.0")
    library.E_IF_init.restype = ctypes.c_void_p
    library.E_IF_encode.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    ]  # fmt: skip
    library.E_IF_exit.argtypes = [ctypes.c_void_p]
    samples = _whole(pcm, 320)
    state = library.E_IF_init()
    out = ctypes.create_string_buffer(64)
    frames = []
    try:
        for start in range(0, len(samples), 320):
            chunk = np.ascontiguousarray(samples[start : start + 320])
            size = library.E_IF_encode(state, mode, chunk.ctypes.data, out, int(dtx))
            frames.append(out.raw[:size])
    finally:
        library.E_IF_exit(state)
    return frames


def pack_amr(
    frames: Sequence[bytes], *, wideband: bool = False, octet_aligned: bool = False, cmr: int = 15
) -> bytes:
    """An RFC 4867 payload from storage-format frames, in either packing."""
    table = AMR_WB_BITS if wideband else AMR_BITS
    types = [(frame[0] >> 3 & 0x0F, frame[0] >> 2 & 1) for frame in frames]
    sizes = [table[ft] if ft < len(table) else 0 for ft, _ in types]
    last = len(frames) - 1
    if octet_aligned:
        toc = bytes((i < last) << 7 | ft << 3 | q << 2 for i, (ft, q) in enumerate(types))
        return bytes((cmr << 4,)) + toc + b"".join(frame[1:] for frame in frames)
    bits = f"{cmr:04b}"
    bits += "".join(f"{int(i < last)}{ft:04b}{q}" for i, (ft, q) in enumerate(types))
    for frame, size in zip(frames, sizes, strict=True):
        bits += "".join(f"{byte:08b}" for byte in frame[1:])[:size]
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def _amr_stream(
    codec: str, frames: list[bytes], clock: int, per_packet: int, octet_aligned: bool, cmr: int
) -> EncodedStream:
    payloads, timestamps = [], []
    for start in range(0, len(frames), per_packet):
        group = frames[start : start + per_packet]
        if all(frame[0] >> 3 & 0x0F == 15 for frame in group):
            continue  # RFC 4867: a packet of NO_DATA frames only is not sent
        payloads.append(
            pack_amr(group, wideband=codec == "AMR-WB", octet_aligned=octet_aligned, cmr=cmr)
        )
        timestamps.append(start * clock // 50)
    fmtp = "octet-align=1" if octet_aligned else None
    return EncodedStream(codec, clock, payloads, timestamps, fmtp)


def encode_amr(
    pcm: npt.ArrayLike,
    *,
    mode: int = 7,
    octet_aligned: bool = False,
    ptime: int = 20,
    dtx: bool = False,
    cmr: int = 15,
) -> EncodedStream:
    frames = amr_storage_frames(_whole(pcm, 8 * ptime), mode=mode, dtx=dtx)
    return _amr_stream("AMR", frames, 8000, ptime // 20, octet_aligned, cmr)


def encode_amr_wb(
    pcm: npt.ArrayLike,
    *,
    mode: int = 8,
    octet_aligned: bool = False,
    ptime: int = 20,
    dtx: bool = False,
    cmr: int = 15,
) -> EncodedStream:
    frames = amr_wb_storage_frames(_whole(pcm, 16 * ptime), mode=mode, dtx=dtx)
    return _amr_stream("AMR-WB", frames, 16000, ptime // 20, octet_aligned, cmr)


# --- G.729 ------------------------------------------------------------------------------


def g729_frames(pcm: npt.ArrayLike, *, vad: bool = False) -> list[bytes]:
    """One entry per 10 ms of 8 kHz PCM: 10 bytes (speech), 2 (SID) or 0 (not sent)."""
    library = ctypes.CDLL("libbcg729.so.0")
    library.initBcg729EncoderChannel.restype = ctypes.c_void_p
    library.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
    library.bcg729Encoder.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint8)
    ]  # fmt: skip
    library.closeBcg729EncoderChannel.argtypes = [ctypes.c_void_p]
    samples = _whole(pcm, 80)
    channel = library.initBcg729EncoderChannel(int(vad))
    out = ctypes.create_string_buffer(10)
    length = ctypes.c_uint8()
    frames = []
    try:
        for start in range(0, len(samples), 80):
            chunk = np.ascontiguousarray(samples[start : start + 80])
            library.bcg729Encoder(channel, chunk.ctypes.data, out, ctypes.byref(length))
            frames.append(out.raw[: length.value])
    finally:
        library.closeBcg729EncoderChannel(channel)
    return frames


def encode_g729(pcm: npt.ArrayLike, *, ptime: int = 20, vad: bool = False) -> EncodedStream:
    """G.729A; with ``vad`` silence becomes SID frames (2 bytes, always last in their
    packet, RFC 3551) and untransmitted frames, so the timestamps have gaps."""
    per_packet = ptime // 10
    payloads: list[bytes] = []
    timestamps: list[int] = []
    pending: list[bytes] = []
    first = 0

    def flush() -> None:
        if pending:
            payloads.append(b"".join(pending))
            timestamps.append(first * 80)
            pending.clear()

    for index, frame in enumerate(g729_frames(_whole(pcm, 8 * ptime), vad=vad)):
        if not frame:
            flush()
            continue
        if not pending:
            first = index
        pending.append(frame)
        if len(frame) == 2 or len(pending) == per_packet:
            flush()
    flush()
    return EncodedStream("G729", 8000, payloads, timestamps, None if vad else "annexb=no")


# --- RFC 4733 telephone-event -----------------------------------------------------------


def telephone_event(event: int, *, end: bool, volume: int, duration: int) -> bytes:
    return struct.pack("!BBH", event, end << 7 | volume, duration)


def dtmf_packets(
    digits: str,
    *,
    t0: float,
    ssrc: int = 0x0D7F_0001,
    payload_type: int = 101,
    clock_rate: int = 8000,
    ts0: int = 10_000,
    seq0: int = 2000,
    tone: float = 0.1,
    gap: float = 0.1,
    interval: float = 0.02,
    end_repeats: int = 3,
    volume: int = 10,
) -> list[StreamPacket]:
    """Digits as a sender emits them: a packet every ``interval`` with the duration so
    far (the first with the marker bit), then the end packet ``end_repeats`` times.
    Digit k starts at ``t0 + k * (tone + gap)``; a packet arrives when sent."""
    packets = []
    seq = seq0
    step = round(interval * clock_rate)
    total = round(tone * clock_rate)
    for k, digit in enumerate(digits):
        event = DTMF_EVENTS.index(digit)
        start = t0 + k * (tone + gap)
        stamp = (ts0 + round(k * (tone + gap) * clock_rate)) & 0xFFFFFFFF
        sends = [(start + d / clock_rate, d, False) for d in range(step, total, step)]
        sends += [(start + tone + j * interval, total, True) for j in range(end_repeats)]
        for i, (sent, duration, end) in enumerate(sends):
            payload = telephone_event(event, end=end, volume=volume, duration=duration)
            packets.append(
                StreamPacket(sent, seq & 0xFFFF, stamp, ssrc, payload_type, payload, i == 0)
            )
            seq += 1
    return packets


# --- captures ---------------------------------------------------------------------------


def write_capture(
    path: Path, flows: Iterable[tuple[Address, Address, Iterable[StreamPacket]]]
) -> int:
    """Write (source, destination, packets) flows to a pcap in arrival order; the count."""
    datagrams = [
        (packet.arrival, src, dst, to_rtp(packet))
        for src, dst, packets in flows
        for packet in packets
    ]
    datagrams.sort(key=lambda d: d[0])
    with path.open("wb") as fileobj:
        writer = PcapWriter(fileobj)
        writer.write_header()
        for ts, src, dst, data in datagrams:
            writer.write_packet(ts, src, dst, data)
    return len(datagrams)


# --- signals and measures ---------------------------------------------------------------


def tone(freq: float, seconds: float, rate: int, amplitude: float = 8000.0) -> Pcm:
    t = np.arange(round(seconds * rate)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def two_tone(f1: float, f2: float, seconds: float, rate: int, amplitude: float = 6000.0) -> Pcm:
    return (
        (tone(f1, seconds, rate, amplitude).astype(np.int32) + tone(f2, seconds, rate, amplitude))
        .clip(-32768, 32767)
        .astype(np.int16)
    )


def chirp(f0: float, f1: float, seconds: float, rate: int, amplitude: float = 8000.0) -> Pcm:
    """A linear sweep from ``f0`` to ``f1`` Hz."""
    t = np.arange(round(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return np.rint(amplitude * np.sin(phase)).astype(np.int16)


def dominant_frequency(pcm: npt.ArrayLike, rate: int) -> float:
    samples = np.asarray(pcm, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def aligned_snr(
    reference: npt.ArrayLike, decoded: npt.ArrayLike, max_lag: int = 1000
) -> tuple[float, int]:
    """SNR in dB of ``decoded`` against ``reference`` at the codec delay (0 to
    ``max_lag`` samples) that maximises their cross-correlation; (snr, delay)."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(decoded, dtype=np.float64)
    n = min(len(ref), len(out) - max_lag)
    size = 1 << (n + max_lag).bit_length()
    spectrum = np.fft.rfft(out[: n + max_lag], size) * np.conj(np.fft.rfft(ref[:n], size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: max_lag + 1]))
    error = out[lag : lag + n] - ref[:n]
    return float(10 * np.log10(np.sum(ref[:n] ** 2) / max(np.sum(error**2), 1e-9))), lag
