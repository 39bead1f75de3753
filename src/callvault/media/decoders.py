"""RTP payload decoders for every codec SIPREC sources send, behind one small interface.

``decoder_for(codec, clock_rate, fmtp, channels)`` builds a stateful decoder for ONE RTP
source (one SSRC), fed in timestamp order; ``audio_rate`` says the PCM rate it will
produce without building it. ``decode(payload)`` returns mono int16 PCM for every frame
in the payload, exactly as many samples as the payload spans on the RTP timeline, so
consecutive packets meet without gaps. A payload that cannot be decoded raises
``UndecodablePayload`` and nothing else (the caller counts it and leaves silence); a
stream that cannot be decoded at all raises ``UnsupportedCodec`` up front.

Codecs (SDP names, case-insensitive) and the PCM rate produced:
  PCMU, PCMA     8 kHz  table lookup (``g711``)
  G722          16 kHz  FFmpeg; the RTP clock is 8000 (RFC 3551 keeps the G.721 value)
  G729           8 kHz  FFmpeg; 10-byte frames; an Annex B SID (2 bytes at the end) is
                        dropped (FFmpeg cannot decode it; the timeline leaves silence)
  GSM            8 kHz  FFmpeg; 33-byte GSM 06.10 frames
  AMR / AMR-WB   8 / 16 kHz  RFC 4867 parsing (``amr``), frames through FFmpeg; a SID,
                        NO_DATA or SPEECH_LOST slot gives 20 ms of zeros
  opus          16 kHz  RTP clock 48000; 48 kHz only when the fmtp says the sender
                        captures above wideband (``sprop-maxcapturerate`` > 16000).
                        Stereo is decoded to mono by the Opus decoder itself.

Opus is decoded by libopus through ctypes, straight at the output rate (libopus decodes
at 8/12/16/24/48 kHz): 15 µs per 20 ms packet against 34 µs for FFmpeg's 48 kHz output
plus ``av.AudioResampler``, and exact sample counts with no resampler delay. The library
is the one PyAV's wheel bundles, else the system's; without either, FFmpeg's decoder
and a resampler take over. No I/O besides loading those libraries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

from callvault.media.amr import NB_SID, WB_SID, AmrPayload, AmrPayloadError
from callvault.media.g711 import AlawDecoder, UlawDecoder

__all__ = [
    "CODECS",
    "NON_AUDIO",
    "AmrDecoder",
    "CodecInfo",
    "FfmpegOpusDecoder",
    "G722Decoder",
    "G729Decoder",
    "GsmDecoder",
    "LibopusDecoder",
    "PayloadDecoder",
    "Pcm",
    "UndecodablePayload",
    "UnsupportedCodec",
    "audio_rate",
    "decoder_for",
]

Pcm = npt.NDArray[np.int16]
_EMPTY: Pcm = np.zeros(0, dtype=np.int16)


class UnsupportedCodec(ValueError):
    """A stream's codec, clock rate, channels or fmtp cannot be decoded; says which and why."""


class UndecodablePayload(ValueError):
    """One payload is malformed or corrupt; the caller leaves silence for its span."""


class PayloadDecoder(Protocol):
    """Decodes the payloads of one RTP source, in timestamp order, to mono int16 PCM."""

    @property
    def sample_rate(self) -> int: ...

    def decode(self, payload: bytes) -> Pcm: ...


#: Lower-case payload names that carry no audio: never given to a decoder.
NON_AUDIO: frozenset[str] = frozenset({"telephone-event", "cn"})


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """A decodable codec: SDP name, the RTP clock rate SDP must give, default PCM rate."""

    name: str
    clock_rate: int
    sample_rate: int
    channels: tuple[int, ...] = (1,)


#: Every decodable codec, keyed by lower-case SDP encoding name.
CODECS: dict[str, CodecInfo] = {
    info.name.lower(): info
    for info in (
        CodecInfo("PCMU", 8000, 8000),
        CodecInfo("PCMA", 8000, 8000),
        CodecInfo("G722", 8000, 16000),
        CodecInfo("G729", 8000, 8000),
        CodecInfo("GSM", 8000, 8000),
        CodecInfo("AMR", 8000, 8000),
        CodecInfo("AMR-WB", 16000, 16000),
        # RFC 7587: always opus/48000/2 in SDP, whatever the sender really sends.
        CodecInfo("opus", 48000, 16000, (1, 2)),
    )
}


def _fmtp_params(fmtp: str | None) -> dict[str, str]:
    """``a=fmtp`` parameters (``key=value; key=value``), keys lower-cased."""
    params: dict[str, str] = {}
    for item in (fmtp or "").split(";"):
        key, _, value = item.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip()
    return params


def _resolve(
    codec: str, clock_rate: int, fmtp: str | None
) -> tuple[CodecInfo, int, dict[str, str]]:
    """Validate a stream description; the codec, its PCM rate and its fmtp parameters."""
    name = codec.lower()
    if name in NON_AUDIO:
        raise UnsupportedCodec(f"{codec}/{clock_rate} carries no audio: not decoded")
    info = CODECS.get(name)
    if info is None:
        known = ", ".join(c.name for c in CODECS.values())
        raise UnsupportedCodec(f"{codec}/{clock_rate}: unknown codec (decodable: {known})")
    if clock_rate != info.clock_rate:
        raise UnsupportedCodec(
            f"{info.name}/{clock_rate}: the RTP clock rate of {info.name} is {info.clock_rate}"
        )
    params = _fmtp_params(fmtp)
    rate = info.sample_rate
    if name == "opus" and _int(params.get("sprop-maxcapturerate")) > 16000:
        rate = 48000
    if name in ("amr", "amr-wb"):
        for key, why in (
            ("crc", "frame CRCs"),
            ("robust-sorting", "robust sorting"),
            ("interleaving", "interleaving"),
        ):
            if key in params and params[key] != "0":
                raise UnsupportedCodec(
                    f"{info.name}/{clock_rate} with {key}={params[key]} ({why}) is not"
                    " supported: rare, and its payloads differ from plain octet-aligned"
                )
    return info, rate, params


def _int(text: str | None) -> int:
    try:
        return int(text or "0")
    except ValueError:
        return 0


def audio_rate(codec: str, clock_rate: int, fmtp: str | None = None) -> int:
    """The PCM rate ``decoder_for(codec, clock_rate, fmtp)`` will produce."""
    return _resolve(codec, clock_rate, fmtp)[1]


def decoder_for(
    codec: str, clock_rate: int, fmtp: str | None = None, channels: int = 1
) -> PayloadDecoder:
    """A fresh decoder for one RTP source of this codec; ``UnsupportedCodec`` if none."""
    info, rate, params = _resolve(codec, clock_rate, fmtp)
    name = info.name
    if channels not in info.channels:
        raise UnsupportedCodec(
            f"{name}/{clock_rate}/{channels}: {channels}-channel {name} is not supported"
        )
    if name == "PCMU":
        return UlawDecoder()
    if name == "PCMA":
        return AlawDecoder()
    if name == "G722":
        return G722Decoder()
    if name == "G729":
        return G729Decoder()
    if name == "GSM":
        return GsmDecoder()
    if name in ("AMR", "AMR-WB"):
        return AmrDecoder(wideband=name == "AMR-WB", octet_aligned=params.get("octet-align") == "1")
    library = _libopus()
    if library is not None:
        return LibopusDecoder(library, rate)
    return FfmpegOpusDecoder(rate)


# --- FFmpeg (PyAV) ---------------------------------------------------------------------


class _FfmpegDecoder:
    """A PyAV decoding context; turns FFmpeg's errors into ``UndecodablePayload``."""

    __slots__ = ("_context", "_label", "sample_rate")

    def __init__(self, codec: str, rate: int, label: str) -> None:
        self._context = cast(AudioCodecContext, av.CodecContext.create(codec, "r"))
        self._context.sample_rate = rate
        self._context.layout = "mono"
        self._context.open()
        self._label = label
        self.sample_rate = rate

    def _frames(self, data: bytes) -> list[AudioFrame]:
        # Never send an empty packet: FFmpeg reads it as end of stream.
        try:
            return self._context.decode(av.Packet(data))
        except (av.FFmpegError, ValueError) as exc:
            raise UndecodablePayload(f"{self._label}: {exc}") from exc

    def _pcm(self, data: bytes, expected: int) -> Pcm:
        """Decode ``data`` into exactly ``expected`` samples, or raise."""
        frames = self._frames(data)
        parts = [_samples(frame) for frame in frames]
        pcm = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else _EMPTY
        if len(pcm) != expected:
            raise UndecodablePayload(
                f"{self._label}: decoder gave {len(pcm)} samples, expected {expected}"
            )
        return pcm


def _samples(frame: AudioFrame) -> Pcm:
    """A decoded mono frame as a new int16 array. Reading the plane directly is 5x
    faster than ``to_ndarray``; float output (amrnb, amrwb, opus) is scaled and clipped
    with float32 scalars, which keeps NumPy from promoting and halves the cost."""
    plane = memoryview(frame.planes[0])
    if frame.format.name in ("s16", "s16p"):
        return np.frombuffer(plane, dtype=np.int16, count=frame.samples).copy()
    floats = np.frombuffer(plane, dtype=np.float32, count=frame.samples) * _SCALE
    pcm: Pcm = floats.clip(_LOW, _HIGH).astype(np.int16)
    return pcm


_SCALE, _LOW, _HIGH = np.float32(32768), np.float32(-32768), np.float32(32767)


class G722Decoder(_FfmpegDecoder):
    """G.722 at 64 kbit/s: each payload byte is two 16 kHz samples."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("g722", 16000, "G722")

    def decode(self, payload: bytes) -> Pcm:
        return self._pcm(payload, 2 * len(payload)) if payload else _EMPTY


class G729Decoder(_FfmpegDecoder):
    """G.729/A 10-byte frames (80 samples); a trailing 2-byte Annex B SID is dropped."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("g729", 8000, "G729")

    def decode(self, payload: bytes) -> Pcm:
        frames, rest = divmod(len(payload), 10)
        if rest == 2:
            payload = payload[: frames * 10]
        elif rest:
            raise UndecodablePayload(
                f"G729: {len(payload)} bytes is not 10-byte frames and an optional 2-byte SID"
            )
        return self._pcm(payload, 80 * frames) if frames else _EMPTY


class GsmDecoder(_FfmpegDecoder):
    """GSM 06.10 full rate: 33-byte frames of 160 samples."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("gsm", 8000, "GSM")

    def decode(self, payload: bytes) -> Pcm:
        frames, rest = divmod(len(payload), 33)
        if rest:
            raise UndecodablePayload(f"GSM: {len(payload)} bytes is not whole 33-byte frames")
        return self._pcm(payload, 160 * frames) if frames else _EMPTY


class AmrDecoder(_FfmpegDecoder):
    """AMR or AMR-WB (RFC 4867); every frame slot gives 20 ms, silent when it holds no
    speech (SID, NO_DATA, SPEECH_LOST), so later frames keep their place."""

    __slots__ = ("_frame_length", "_octet_aligned", "_sid", "_wideband")

    def __init__(self, *, wideband: bool, octet_aligned: bool) -> None:
        rate = 16000 if wideband else 8000
        label = "AMR-WB" if wideband else "AMR"
        super().__init__("amrwb" if wideband else "amrnb", rate, label)
        self._wideband = wideband
        self._octet_aligned = octet_aligned
        self._sid = WB_SID if wideband else NB_SID
        self._frame_length = rate // 50

    def decode(self, payload: bytes) -> Pcm:
        try:
            parsed = AmrPayload.parse(
                payload, wideband=self._wideband, octet_aligned=self._octet_aligned
            )
        except AmrPayloadError as exc:
            raise UndecodablePayload(f"{self._label}: {exc}") from exc
        length = self._frame_length
        if len(parsed.frames) == 1:
            frame = parsed.frames[0]
            if frame.frame_type < self._sid:
                return self._pcm(frame.storage(), length)
            return np.zeros(length, dtype=np.int16)
        pcm = np.zeros(length * len(parsed.frames), dtype=np.int16)
        for index, frame in enumerate(parsed.frames):
            if frame.frame_type < self._sid:
                pcm[index * length : (index + 1) * length] = self._pcm(frame.storage(), length)
        return pcm


class FfmpegOpusDecoder(_FfmpegDecoder):
    """Opus through FFmpeg at 48 kHz and ``av.AudioResampler``: the fallback when
    libopus cannot be loaded by ctypes. FFmpeg's libopus wrapper is preferred to its
    native decoder, whose SILK output strays from libopus (22 dB SNR between the two
    on speech). The resampler holds back its filter delay; a small backlog returns
    exactly each packet's span, the delay becoming leading zeros at the stream start."""

    __slots__ = ("_backlog", "_resampler")

    def __init__(self, rate: int) -> None:
        codec = "libopus" if "libopus" in av.codecs_available else "opus"
        super().__init__(codec, 48000, "opus")
        self.sample_rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        self._backlog = _EMPTY

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            raise UndecodablePayload("opus: empty payload")
        frames = self._frames(payload)
        expected = sum(frame.samples for frame in frames) * self.sample_rate // 48000
        resampled = [_samples(out) for frame in frames for out in self._resampler.resample(frame)]
        backlog = np.concatenate([self._backlog, *resampled])
        if len(backlog) < expected:
            backlog = np.concatenate([np.zeros(expected - len(backlog), np.int16), backlog])
        self._backlog = backlog[expected:]
        return backlog[:expected]


# --- libopus (ctypes) ------------------------------------------------------------------

_MAX_OPUS_MS = 120  # the longest Opus packet (RFC 6716 section 3.2.1)


@cache
def _libopus() -> ctypes.CDLL | None:
    """libopus: PyAV's bundled copy (already mapped by FFmpeg), else the system's."""
    package = Path(av.__file__).resolve().parent
    bundled = [
        *sorted(package.parent.glob("av.libs/libopus*")),  # Linux wheels (auditwheel)
        *sorted(package.glob(".dylibs/libopus*")),  # macOS wheels (delocate)
    ]
    for candidate in bundled:
        library = _load_libopus(str(candidate))
        if library is not None:
            return library
    # find_library may run ldconfig: only when PyAV brought no copy of its own.
    system = ctypes.util.find_library("opus")
    return _load_libopus(system) if system else None


def _load_libopus(path: str) -> ctypes.CDLL | None:
    try:
        library = ctypes.CDLL(path)
        create, decode, destroy = (
            library.opus_decoder_create,
            library.opus_decode,
            library.opus_decoder_destroy,
        )
    except (OSError, AttributeError):
        return None
    create.restype = ctypes.c_void_p
    create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    decode.restype = ctypes.c_int
    decode.argtypes = [
        ctypes.c_void_p,  # decoder
        ctypes.c_char_p,  # payload
        ctypes.c_int32,  # payload length
        ctypes.c_void_p,  # int16 output
        ctypes.c_int,  # output capacity, samples per channel
        ctypes.c_int,  # decode_fec
    ]
    destroy.restype = None
    destroy.argtypes = [ctypes.c_void_p]
    return library


class LibopusDecoder:
    """Opus decoded by libopus at ``rate`` in mono (stereo packets are downmixed)."""

    __slots__ = ("__weakref__", "_decode", "_handle", "_out", "_pointer", "sample_rate")

    def __init__(self, library: ctypes.CDLL, rate: int) -> None:
        error = ctypes.c_int(0)
        handle = library.opus_decoder_create(rate, 1, ctypes.byref(error))
        if error.value or not handle:
            raise UnsupportedCodec(f"opus/48000: libopus cannot decode at {rate} Hz")
        self._handle: int = handle
        weakref.finalize(self, library.opus_decoder_destroy, handle)
        self._decode: Callable[..., int] = library.opus_decode
        self._out = np.zeros(rate * _MAX_OPUS_MS // 1000, dtype=np.int16)
        self._pointer = self._out.ctypes.data
        self.sample_rate = rate

    def decode(self, payload: bytes) -> Pcm:
        # An empty payload would ask libopus to conceal a loss of unknown length.
        if not payload:
            raise UndecodablePayload("opus: empty payload")
        count = self._decode(self._handle, payload, len(payload), self._pointer, len(self._out), 0)
        if count < 0:
            raise UndecodablePayload(f"opus: libopus error {count} ({_OPUS_ERRORS.get(count)})")
        return self._out[:count].copy()


_OPUS_ERRORS = {
    -1: "bad argument",
    -2: "packet longer than 120 ms",
    -3: "internal error",
    -4: "invalid packet",
    -5: "unimplemented",
    -6: "invalid state",
    -7: "allocation failed",
}
