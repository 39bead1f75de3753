"""The per-format file writers behind ``encode.AudioEncoder``.

Each writer takes int16 blocks shaped (channels, n) that ``AudioEncoder`` has already
checked and batched, and owns one open file: ``PyAVWriter`` (Ogg Opus, MP3),
``SoundfileWriter`` (Ogg Vorbis and A-law, µ-law and GSM 6.10 in WAV, via libsndfile) and
``PcmWavWriter`` (16-bit PCM through ``wav.WavWriter``). Checks of what a format can hold
live in ``encode.check_layout``, so nothing here decides whether a request is allowed;
errors from FFmpeg or libsndfile past those checks are real I/O or library failures and
pass through unchanged.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import av
import numpy as np
import numpy.typing as npt
import soundfile
from av.audio.stream import AudioStream

from callvault.media.wav import WavWriter

if TYPE_CHECKING:
    from callvault.media.encode import OutputFormat

__all__ = [
    "OPUS_RATES",
    "FormatWriter",
    "PcmWavWriter",
    "PyAVWriter",
    "SoundfileWriter",
    "open_writer",
]

Pcm = npt.NDArray[np.int16]

#: Input rates libopus codes directly (no resampling: SILK/CELT run at these rates).
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

# 60 ms Opus packets rather than the usual 20: measured on two-party speech at 12 kbit/s
# per channel and complexity 1, PESQ 3.39 instead of 3.29 and 162 instead of 169 KiB per
# minute (less framing per second), at the same speed; 120 ms scored worse (2.99).
# Latency does not matter in a file and 60 ms is still fine-grained for seeking.
_OPUS_FRAME_MS = "60"

GSM_RATE = 8000


class FormatWriter(Protocol):
    #: The sample rate coded in the file (differs from the input for GSM 6.10).
    file_rate: int

    def write(self, pcm: Pcm) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def open_writer(path: Path, fmt: OutputFormat, channels: int, sample_rate: int) -> FormatWriter:
    if fmt.codec == "opus":
        return PyAVWriter(
            path,
            container="ogg",
            codec="libopus",
            channels=channels,
            sample_rate=sample_rate,
            bit_rate=fmt.opus_kbps(sample_rate) * 1000 * channels,
            options={
                "application": "voip",
                # Family 255 codes every channel as its own uncoupled mono stream, so one
                # party can never leak into the other's channel (coupled stereo Opus at
                # these rates collapses the parties into each other). Mono uses family 0.
                "mapping_family": "255" if channels > 1 else "0",
                "compression_level": str(fmt.opus_complexity),
                "frame_duration": _OPUS_FRAME_MS,
                "vbr": "on",
            },
            interleaved=True,  # libopus takes packed s16
        )
    if fmt.codec == "mp3":
        return PyAVWriter(
            path,
            container="mp3",
            codec="libmp3lame",
            channels=channels,
            sample_rate=sample_rate,
            bit_rate=fmt.mp3_bitrate * 1000,
            # Plain L/R stereo: joint (mid/side) stereo would spread one party's coding
            # noise into the other channel. Measured: same PESQ either way.
            options={"joint_stereo": "0"},
            interleaved=False,  # LAME takes planar s16p
        )
    if fmt.codec == "pcm":
        return PcmWavWriter(path, channels, sample_rate)
    return SoundfileWriter(path, fmt, channels, sample_rate)


def _layout(channels: int) -> str:
    # FFmpeg's default layout for the count; with mapping family 255 libopus ignores the
    # speaker names and keeps the channel order.
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


class PyAVWriter:
    """An FFmpeg muxer and encoder: one audio stream, fed one big frame per batch."""

    def __init__(
        self,
        path: Path,
        *,
        container: str,
        codec: str,
        channels: int,
        sample_rate: int,
        bit_rate: int,
        options: dict[str, str],
        interleaved: bool,
    ) -> None:
        self.file_rate = sample_rate
        self._layout = _layout(channels)
        self._interleaved = interleaved
        self._pts = 0
        # The muxer is named, never guessed from the (temporary) file name.
        self._container = av.open(str(path), "w", format=container)
        try:
            stream = self._container.add_stream(
                codec, rate=sample_rate, layout=self._layout, options=options
            )
            if not isinstance(stream, AudioStream):  # the codec names above are audio
                raise TypeError(f"{codec} did not give an audio stream")
            stream.bit_rate = bit_rate
            self._stream = stream
            # Headers go out now, so even a writer that fails later leaves a real file.
            self._container.start_encoding()
        except BaseException:
            self._container.close()
            raise

    def write(self, pcm: Pcm) -> None:
        if self._interleaved:
            data = np.ascontiguousarray(pcm.T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format="s16", layout=self._layout)
        else:
            data = np.ascontiguousarray(pcm)
            frame = av.AudioFrame.from_ndarray(data, format="s16p", layout=self._layout)
        frame.sample_rate = self.file_rate
        frame.pts = self._pts
        self._pts += pcm.shape[1]
        # PyAV cuts the big frame into codec frames itself (the last one padded, then
        # trimmed through the Ogg granule position or the LAME tag).
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def abort(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError):
            self._container.close()


_SNDFILE_CHUNK = 65536  # frames per libsndfile call


class SoundfileWriter:
    """libsndfile: Ogg Vorbis, and G.711 A-law / µ-law and GSM 6.10 in WAV."""

    _SUBTYPES = {
        "vorbis": ("OGG", "VORBIS"),
        "alaw": ("WAV", "ALAW"),
        "ulaw": ("WAV", "ULAW"),
        "gsm": ("WAV", "GSM610"),
    }

    def __init__(self, path: Path, fmt: OutputFormat, channels: int, sample_rate: int) -> None:
        container, subtype = self._SUBTYPES[fmt.codec]
        self._resampler: av.AudioResampler | None = None
        self.file_rate = sample_rate
        if fmt.codec == "gsm" and sample_rate != GSM_RATE:
            # GSM 6.10 is defined at 8 kHz only; FFmpeg's resampler keeps state across
            # calls, so chunked input resamples as one stream.
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=GSM_RATE)
            self.file_rate = GSM_RATE
        self._input_rate = sample_rate
        self._pts = 0
        extra: dict[str, float] = {}
        if fmt.codec == "vorbis":
            # libsndfile sets Vorbis quality to 1 - level; oggenc -q N is quality N/10.
            extra["compression_level"] = 1.0 - fmt.vorbis_quality / 10.0
        self._file = soundfile.SoundFile(
            str(path),
            "w",
            samplerate=self.file_rate,
            channels=channels,
            format=container,
            subtype=subtype,
            **extra,
        )

    def write(self, pcm: Pcm) -> None:
        if self._resampler is None:
            # libsndfile 1.2's Vorbis writer needs stack in proportion to the frames of
            # one call (about 4 bytes each): a whole long recording in one write
            # overflows the default 8 MiB stack and kills the process. Bounded chunks.
            for start in range(0, pcm.shape[1], _SNDFILE_CHUNK):
                self._file.write(np.ascontiguousarray(pcm[:, start : start + _SNDFILE_CHUNK].T))
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="s16", layout="mono")
        frame.sample_rate = self._input_rate
        frame.pts = self._pts
        self._pts += pcm.shape[1]
        self._write_resampled(self._resampler.resample(frame))

    def _write_resampled(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            self._file.write(frame.to_ndarray().reshape(-1, 1))

    def close(self) -> None:
        if self._resampler is not None:
            self._write_resampled(self._resampler.resample(None))
        self._file.close()

    def abort(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self._file.close()


class PcmWavWriter:
    """16-bit PCM WAV through the project's ``WavWriter`` (stdlib ``wave``)."""

    def __init__(self, path: Path, channels: int, sample_rate: int) -> None:
        self.file_rate = sample_rate
        self._wav = WavWriter(path, channels, sample_rate)

    def write(self, pcm: Pcm) -> None:
        self._wav.write(*pcm)

    def close(self) -> None:
        self._wav.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._wav.close()
