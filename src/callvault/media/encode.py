"""Encode finished call audio into the file format the customer configured.

Input is int16 PCM shaped ``(channels, samples)`` as the finalize job produces it (8 or
16 kHz, sometimes 48 kHz; one party per channel for stereo), fed whole or in chunks of any
length. Output is one file written exactly at the path given (the caller writes to a
temporary name and renames it, so the muxer is chosen from the format, never from the
extension), plus its size, SHA-256 and duration.

Backends: PyAV (FFmpeg) for Ogg Opus and MP3, libsndfile (``soundfile``) for Ogg Vorbis
and G.711 / GSM 6.10 in WAV (PyAV cannot write GSM-in-WAV and its Vorbis encoder is
unusable), and the stdlib-based ``wav.WavWriter`` for 16-bit PCM. Opus codes each channel
as its own stream (mapping family 255, no coupled streams) and MP3 is plain L/R stereo,
so neither lets one party into the other's channel. libvorbis always couples a stereo
pair: a silent channel stays silent, but in double talk each channel scores clearly
worse than alone (bench/formats.py), which the settings should say. No sockets, no
clock, no threads: the job runner decides where this runs.

Lengths as measured with FFmpeg (the tests pin them): Opus, MP3 and WAV decode to
exactly the samples given (Opus pre-skip and end trimming in the Ogg granules; the LAME
tag that FFmpeg's mp3 muxer writes carries the encoder delay and padding, e.g. 1044 and
3397 samples for 1 s at 8 kHz, which a player ignoring the tag hears as extra silence).
Vorbis is exact too once the stream spans more than one Ogg page (a few seconds); a
stream held in a single page decodes in FFmpeg up to 256 samples off (libsndfile reads
it exactly). GSM 6.10 in WAV decodes to a whole number of 320-sample frame pairs (up to
40 ms more); its ``fact`` chunk holds the exact count.

Empty input (no samples at all) raises ``EncodeError``: FFmpeg cannot open an Ogg Opus
or MP3 stream without a single packet, so there is no honest zero-length file to hand
back, and one rule for every format is simpler for the caller than a per-format one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from callvault.media.format_writers import OPUS_RATES, FormatWriter, open_writer

__all__ = [
    "MP3_BITRATES",
    "OPUS_BITRATES",
    "AudioEncoder",
    "EncodeError",
    "EncodedFile",
    "OutputFormat",
    "check_layout",
    "encode_file",
]

Pcm = npt.NDArray[np.int16]

#: Bit rates offered in the settings (kbit/s per channel for Opus, total for MP3).
OPUS_BITRATES = (8, 10, 12, 16, 24)
MP3_BITRATES = (8, 16, 24, 32, 48)

_CODECS_BY_CONTAINER = {
    "ogg": ("opus", "vorbis"),
    "mp3": ("mp3",),
    "wav": ("pcm", "alaw", "ulaw", "gsm"),
}
_WRITTEN_CODEC = {
    "opus": "opus",
    "vorbis": "vorbis",
    "mp3": "mp3",
    "pcm": "pcm_s16le",
    "alaw": "pcm_alaw",
    "ulaw": "pcm_mulaw",
    "gsm": "gsm_ms",
}

# Libopus complexity, measured with bench/formats.py on two espeak-ng parties sent as
# G.711 (PESQ narrowband of each channel against what that party sent, i.e. the G.711
# audio; family 255, 60 ms frames, PyAV's libopus 1.6.1, one core of this EPYC):
#   12 kbit/s per channel:  complexity   10     8     6     5     3     1
#                           x real time  144   144   170   176   229   403
#                           PESQ L / R   4.08  4.08  4.06  3.94  3.70  3.61
#                                        4.15  4.15  4.12  3.97  3.77  3.69
# 6 is the lowest complexity that keeps both parties at PESQ >= 4.0 at this bit rate
# (5 and below lose the SILK noise-shaping analysis that keeps speech clean). It costs
# speed: the encode alone runs at 170x real time, short of the 250x the whole finalize
# job is meant to reach; operators who need throughput more than quality set
# recording.opus_complexity lower (1: 400x, PESQ 3.6). Paying with bit rate instead
# (16 kbit/s at complexity 1: PESQ 4.07) makes files 30 % larger for ever.
DEFAULT_OPUS_COMPLEXITY = 6


class EncodeError(ValueError):
    """The format, the audio's shape or rate, or the amount of audio cannot be encoded."""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """What the customer configured: container, codec and the codec's one quality knob."""

    container: str  # "ogg" | "mp3" | "wav"
    codec: str  # "opus" | "vorbis" | "mp3" | "pcm" | "alaw" | "ulaw" | "gsm"
    opus_bitrate: int = 12  # kbit/s per channel, narrowband (8 kHz) audio
    opus_bitrate_wideband: int = 20  # kbit/s per channel, 16 kHz and above
    mp3_bitrate: int = 32  # kbit/s total
    vorbis_quality: int = 4  # 0..10 like oggenc -q
    opus_complexity: int = DEFAULT_OPUS_COMPLEXITY  # 0..10, see the measurements above

    def __post_init__(self) -> None:
        codecs = _CODECS_BY_CONTAINER.get(self.container)
        if codecs is None:
            raise EncodeError(
                f"unknown container {self.container!r}; allowed: "
                + ", ".join(sorted(_CODECS_BY_CONTAINER))
            )
        if self.codec not in codecs:
            raise EncodeError(
                f"codec {self.codec!r} is not available in {self.container}; allowed: "
                + ", ".join(codecs)
            )
        for rate in (self.opus_bitrate, self.opus_bitrate_wideband):
            if not 6 <= rate <= 128:
                raise EncodeError(f"Opus bit rate {rate} kbit/s per channel not in 6..128")
        if self.mp3_bitrate not in MP3_BITRATES:
            raise EncodeError(
                f"MP3 bit rate {self.mp3_bitrate} kbit/s not one of "
                + ", ".join(map(str, MP3_BITRATES))
            )
        if not 0 <= self.vorbis_quality <= 10:
            raise EncodeError(f"Vorbis quality {self.vorbis_quality} not in 0..10")
        if not 0 <= self.opus_complexity <= 10:
            raise EncodeError(f"Opus complexity {self.opus_complexity} not in 0..10")

    def opus_kbps(self, sample_rate: int) -> int:
        """Opus kbit/s per channel for audio at ``sample_rate``: wideband audio (G.722,
        AMR-WB, Opus calls) needs more bits for the same quality (bench/quality.py:
        PESQ 3.3-3.7 at 12 kbit/s, 3.9-4.1 at 16, 4.3-4.4 at 24)."""
        return self.opus_bitrate_wideband if sample_rate >= 16000 else self.opus_bitrate

    @property
    def extension(self) -> str:
        return self.container

    @property
    def mime_type(self) -> str:
        if self.container == "ogg":
            return f"audio/ogg; codecs={self.codec}"  # RFC 7845 / RFC 5334
        if self.container == "mp3":
            return "audio/mpeg"
        # Plain audio/wav: browsers sniff the format tag themselves, and a codecs
        # parameter other than "1" makes canPlayType() answer "" for playable files.
        return "audio/wav"

    @property
    def written_codec(self) -> str:
        """FFmpeg's name for the codec in the file (what ``av.open`` reports)."""
        return _WRITTEN_CODEC[self.codec]

    @property
    def plays_in_browser(self) -> bool:
        """Chromium plays everything except GSM-in-WAV, which the player transcodes."""
        return self.codec != "gsm"


@dataclass(frozen=True, slots=True)
class EncodedFile:
    path: Path
    size_bytes: int
    sha256: str
    duration_s: float  # samples given / sample rate given
    channels: int
    sample_rate: int  # the rate coded in the file (Opus decoders still output 48 kHz)
    codec: str  # as written, FFmpeg's name: "opus", "pcm_s16le", "gsm_ms", ...


# Small writes are gathered to about this many frames before a backend sees them, so the
# Python cost per call into FFmpeg or libsndfile stays negligible whatever the caller's
# chunk size (a 20 ms chunk would otherwise cost one frame object per 160 samples).
_BATCH_FRAMES = 1 << 15


class AudioEncoder:
    """A streaming encoder: ``write`` int16 chunks shaped (channels, n), then ``close``.

    ``write`` keeps no reference to the caller's array. As a context manager it closes on
    normal exit and, when the block raises, closes the backend and deletes the partial
    file instead; a failing ``close`` deletes it too. ``close`` is idempotent and returns
    the same ``EncodedFile`` each time.
    """

    def __init__(self, path: Path, fmt: OutputFormat, *, channels: int, sample_rate: int) -> None:
        check_layout(fmt, channels, sample_rate)
        self.path = Path(path)
        self.format = fmt
        self.channels = channels
        self.sample_rate = sample_rate
        self.frames = 0
        self._pending: list[Pcm] = []
        self._pending_frames = 0
        self._result: EncodedFile | None = None
        try:
            self._writer: FormatWriter = open_writer(self.path, fmt, channels, sample_rate)
        except BaseException:
            self.path.unlink(missing_ok=True)  # whatever the library had created
            raise

    def write(self, pcm: Pcm) -> None:
        if self._result is not None:
            raise EncodeError("write after close")
        if pcm.dtype != np.int16 or pcm.ndim != 2 or pcm.shape[0] != self.channels:
            raise EncodeError(
                f"expected int16 audio shaped ({self.channels}, n), "
                f"got {pcm.dtype} shaped {pcm.shape}"
            )
        length = pcm.shape[1]
        if length == 0:
            return
        self.frames += length
        if not self._pending and length >= _BATCH_FRAMES:
            self._writer.write(pcm)
            return
        # A copy: the caller may reuse its buffer once write() returns.
        self._pending.append(pcm.copy())
        self._pending_frames += length
        if self._pending_frames >= _BATCH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch = self._pending[0] if len(self._pending) == 1 else np.hstack(self._pending)
        self._pending.clear()
        self._pending_frames = 0
        self._writer.write(batch)

    def close(self) -> EncodedFile:
        if self._result is not None:
            return self._result
        if self.frames == 0:
            self.abort()
            raise EncodeError(f"no audio to encode into {self.path.name}: 0 samples written")
        try:
            self._flush()
            self._writer.close()
        except BaseException:
            self.abort()
            raise
        self._result = EncodedFile(
            path=self.path,
            size_bytes=self.path.stat().st_size,
            sha256=_sha256(self.path),
            duration_s=self.frames / self.sample_rate,
            channels=self.channels,
            sample_rate=self._writer.file_rate,
            codec=self.format.written_codec,
        )
        return self._result

    def abort(self) -> None:
        """Stop without finishing the file and delete it."""
        self._pending.clear()
        self._writer.abort()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> AudioEncoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            if self._result is None:
                self.abort()
            return
        self.close()


def check_layout(fmt: OutputFormat, channels: int, sample_rate: int) -> None:
    """Refuse a channel count or rate the format cannot hold, before any file is made."""
    if channels < 1:
        raise EncodeError(f"at least one channel is needed, got {channels}")
    if sample_rate <= 0:
        raise EncodeError(f"sample rate must be positive, got {sample_rate}")
    if fmt.codec == "opus":
        if sample_rate not in OPUS_RATES:
            raise EncodeError(
                f"Opus takes 8000, 12000, 16000, 24000 or 48000 Hz input, got {sample_rate}"
            )
        if channels > 255:
            raise EncodeError(f"Ogg Opus holds at most 255 channels, got {channels}")
    elif fmt.codec == "mp3":
        if channels > 2:
            raise EncodeError(f"MP3 holds mono or stereo, got {channels} channels")
        _check_mp3_rate(sample_rate, fmt.mp3_bitrate)
    elif fmt.codec == "gsm" and channels != 1:
        raise EncodeError(f"GSM 6.10 in WAV is mono only, got {channels} channels")


# MPEG-1 Layer III (32/44.1/48 kHz) starts at 32 kbit/s; MPEG-2 (16/22.05/24 kHz) and
# MPEG-2.5 (8/11.025/12 kHz) go from 8 to 160 kbit/s. LAME silently raises a too-low
# MPEG-1 bit rate to 32, which would make the file bigger than configured: refuse instead.
_MP3_MPEG1_RATES = (32000, 44100, 48000)
_MP3_LOW_RATES = (8000, 11025, 12000, 16000, 22050, 24000)


def _check_mp3_rate(sample_rate: int, bitrate: int) -> None:
    if sample_rate in _MP3_MPEG1_RATES:
        if bitrate < 32:
            raise EncodeError(
                f"MP3 at {sample_rate} Hz (MPEG-1) needs at least 32 kbit/s, got {bitrate}"
            )
    elif sample_rate not in _MP3_LOW_RATES:
        raise EncodeError(
            f"MP3 cannot hold {sample_rate} Hz audio; allowed: "
            + ", ".join(map(str, _MP3_LOW_RATES + _MP3_MPEG1_RATES))
        )


def _sha256(path: Path) -> str:
    # Hashed after closing because every backend patches its header at the end (RIFF
    # sizes, the LAME tag, Ogg page checksums are final only then); a second read of a
    # file just written comes from the page cache.
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def encode_file(path: Path, pcm: Pcm, sample_rate: int, fmt: OutputFormat) -> EncodedFile:
    """Encode a whole recording held in memory (shape (channels, n), int16)."""
    if pcm.ndim != 2:
        raise EncodeError(f"expected audio shaped (channels, n), got shape {pcm.shape}")
    with AudioEncoder(path, fmt, channels=pcm.shape[0], sample_rate=sample_rate) as encoder:
        encoder.write(pcm)
    return encoder.close()
