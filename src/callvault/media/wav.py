"""16-bit PCM WAV files (mono or stereo) written in chunks with the stdlib ``wave`` module.

The channels are interleaved one chunk (a few seconds) at a time, so writing needs no
second full-size copy of the audio. The callers still hold each channel whole as int16
(two hours of 8 kHz stereo is 115 MB), which is acceptable for now; a streaming mixer
can feed ``WavWriter.write`` chunk by chunk later without changing the file format.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Sequence
from types import TracebackType

import numpy as np
import numpy.typing as npt

__all__ = ["WavWriter", "write_wav"]

_CHUNK_FRAMES = 1 << 16


class WavWriter:
    """An open WAV file; ``write`` takes one equal-length int16 array per channel."""

    def __init__(self, path: str | os.PathLike[str], channels: int, sample_rate: int) -> None:
        if channels < 1:
            raise ValueError(f"a WAV file needs at least one channel, got {channels}")
        self.channels = channels
        self.sample_rate = sample_rate
        self.frames = 0
        self._wave = wave.open(os.fspath(path), "wb")  # noqa: SIM115 - closed by close()
        self._wave.setnchannels(channels)
        self._wave.setsampwidth(2)
        self._wave.setframerate(sample_rate)

    def write(self, *channels: npt.NDArray[np.int16]) -> None:
        if len(channels) != self.channels:
            raise ValueError(f"expected {self.channels} channel arrays, got {len(channels)}")
        length = len(channels[0])
        if any(len(c) != length for c in channels):
            raise ValueError("channel arrays differ in length")
        if self.channels == 1:
            frames = np.asarray(channels[0], dtype="<i2")
        else:
            frames = np.empty((length, self.channels), dtype="<i2")
            for index, channel in enumerate(channels):
                frames[:, index] = channel
        self._wave.writeframesraw(frames.tobytes())
        self.frames += length

    def close(self) -> None:
        self._wave.close()  # patches the RIFF and data sizes in the header

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_wav(
    path: str | os.PathLike[str],
    channels: Sequence[npt.NDArray[np.int16]],
    sample_rate: int,
    *,
    chunk_frames: int = _CHUNK_FRAMES,
) -> int:
    """Write equal-length int16 channels as one WAV file; return the frame count."""
    with WavWriter(path, len(channels), sample_rate) as writer:
        length = len(channels[0]) if channels else 0
        for offset in range(0, length, chunk_frames):
            writer.write(*(c[offset : offset + chunk_frames] for c in channels))
        return writer.frames
