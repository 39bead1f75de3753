"""WAV writing, read back with the stdlib reader."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from callvault.media.wav import WavWriter, write_wav


def read(path: Path) -> tuple[int, int, int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), np.frombuffer(frames, "<i2")


def test_stereo_is_interleaved_left_first(tmp_path: Path) -> None:
    left = np.arange(0, 1000, dtype=np.int16)
    right = -np.arange(0, 1000, dtype=np.int16)
    path = tmp_path / "call.wav"
    # A chunk size that does not divide the length: the seams must not show.
    assert write_wav(path, [left, right], 8000, chunk_frames=7) == 1000
    channels, width, rate, data = read(path)
    assert (channels, width, rate) == (2, 2, 8000)
    assert np.array_equal(data[0::2], left)
    assert np.array_equal(data[1::2], right)
    assert path.stat().st_size == 44 + 4000


def test_mono(tmp_path: Path) -> None:
    pcm = np.array([0, 32767, -32768, 5], dtype=np.int16)
    path = tmp_path / "mono.wav"
    write_wav(path, [pcm], 16000)
    assert read(path)[:3] == (1, 2, 16000)
    assert np.array_equal(read(path)[3], pcm)


def test_empty_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    assert write_wav(path, [np.zeros(0, np.int16)] * 2, 8000) == 0
    channels, _, _, data = read(path)
    assert channels == 2 and len(data) == 0


def test_writer_checks_its_input(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "x.wav", 2, 8000) as writer:
        with pytest.raises(ValueError, match="expected 2 channel arrays, got 1"):
            writer.write(np.zeros(4, np.int16))
        with pytest.raises(ValueError, match="channel arrays differ in length"):
            writer.write(np.zeros(4, np.int16), np.zeros(3, np.int16))
        writer.write(np.ones(4, np.int16), np.ones(4, np.int16))
        writer.write(np.ones(2, np.int16), np.ones(2, np.int16))
    assert len(read(tmp_path / "x.wav")[3]) == 12
    with pytest.raises(ValueError, match="a WAV file needs at least one channel, got 0"):
        WavWriter(tmp_path / "y.wav", 0, 8000)
