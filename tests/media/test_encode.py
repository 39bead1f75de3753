"""Every recording format, written by ``callvault.media.encode`` and read back with FFmpeg.

Tolerances on the decoded length, as measured and kept exact where FFmpeg is exact:
Ogg Opus, MP3, PCM, A-law and µ-law WAV decode to exactly the samples given (Opus at
48 kHz, i.e. 6x the 8 kHz count); Ogg Vorbis is exact once the stream spans more than
one Ogg page and up to 256 samples off inside a single page (FFmpeg's end trimming of a
lone page); GSM 6.10 rounds up to whole 320-sample frame pairs.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from callvault.media.encode import (
    MP3_BITRATES,
    AudioEncoder,
    EncodeError,
    OutputFormat,
    encode_file,
)
from callvault.media.g711 import ALAW_TO_PCM, ULAW_TO_PCM

RATE = 8000
Pcm = npt.NDArray[np.int16]

FORMATS = {
    "opus": OutputFormat("ogg", "opus"),
    "vorbis": OutputFormat("ogg", "vorbis"),
    "mp3": OutputFormat("mp3", "mp3"),
    "pcm": OutputFormat("wav", "pcm"),
    "alaw": OutputFormat("wav", "alaw"),
    "ulaw": OutputFormat("wav", "ulaw"),
    "gsm": OutputFormat("wav", "gsm"),
}
STEREO = [name for name in FORMATS if name != "gsm"]
WAV_FORMAT_TAG = {"pcm": 1, "alaw": 6, "ulaw": 7, "gsm": 49}


def tone(freq: float, seconds: float, rate: int = RATE, amplitude: float = 8000.0) -> Pcm:
    t = np.arange(round(seconds * rate)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@cache
def speech(voice: str, text: str) -> Pcm:
    """espeak-ng speech at 8 kHz (sox resamples), as the benchmark uses."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, narrow = Path(tmp) / "raw.wav", Path(tmp) / "8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", str(RATE), str(narrow)], check=True)
        pcm, rate = soundfile.read(narrow, dtype="int16")
    assert rate == RATE
    return np.asarray(pcm, dtype=np.int16)


AGENT = ("en-gb+f3", "Thank you for calling, my name is Anna, how can I help you today?")
CALLER = ("en-us", "I am calling about the invoice I received last week for my phone.")


def both_parties() -> Pcm:
    """Agent left, caller right, both talking all the time (double talk)."""
    agent, caller = speech(*AGENT), speech(*CALLER)
    length = min(len(agent), len(caller))
    return np.stack([agent[:length], caller[:length]])


@dataclass
class Decoded:
    container: str
    codec: str
    channels: int
    rate: int
    audio: npt.NDArray[np.float64]  # (channels, n), int16 scale
    extradata: bytes

    @property
    def length(self) -> int:
        return int(self.audio.shape[1])


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = stream.channels
        blocks = []
        for frame in container.decode(stream):
            data = frame.to_ndarray().astype(np.float64)
            if not frame.format.is_planar:
                data = data.reshape(-1, channels).T
            if frame.format.name.startswith(("flt", "dbl")):
                data = data * 32768.0
            blocks.append(data)
        audio = np.concatenate(blocks, axis=1) if blocks else np.zeros((channels, 0))
        return Decoded(
            container.format.name,
            stream.codec_context.codec.canonical_name,
            channels,
            stream.sample_rate,
            audio,
            bytes(stream.codec_context.extradata or b""),
        )


def peak_frequency(signal: npt.NDArray[np.float64], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[int(np.argmax(spectrum))])


def level_db(signal: npt.NDArray[np.float64]) -> float:
    return float(10 * np.log10(np.mean(signal**2) + 1e-12))


def two_tones(seconds: float = 1.5) -> Pcm:
    return np.stack([tone(440, seconds), tone(1250, seconds, amplitude=5000)])


def expected_length(name: str, samples: int, decoded_rate: int) -> tuple[int, int]:
    """(lowest, highest) decoded length FFmpeg gives for ``samples`` input samples."""
    exact = samples * decoded_rate // RATE
    if name == "gsm":
        return exact, -(-exact // 320) * 320
    if name == "vorbis":
        return exact - 256, exact + 256
    return exact, exact


@pytest.mark.parametrize("name", FORMATS)
def test_format_reads_back_with_codec_layout_length_and_channel_order(
    tmp_path: Path, name: str
) -> None:
    fmt = FORMATS[name]
    pcm = two_tones()[:1] if name == "gsm" else two_tones()
    # A name with no usable extension: the muxer must come from the format.
    path = tmp_path / "rec.partial"
    result = encode_file(path, pcm, RATE, fmt)

    assert result.path == path
    assert result.size_bytes == path.stat().st_size
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.duration_s == pytest.approx(1.5)
    assert (result.channels, result.sample_rate) == (pcm.shape[0], RATE)
    assert result.codec == fmt.written_codec

    decoded = decode(path)
    assert decoded.container.split(",")[0] == fmt.container
    assert decoded.codec == result.codec
    assert decoded.channels == pcm.shape[0]
    assert decoded.rate == (48000 if name == "opus" else RATE)
    low, high = expected_length(name, pcm.shape[1], decoded.rate)
    assert low <= decoded.length <= high
    # Channel 0 holds the 440 Hz party, channel 1 the 1250 Hz one: no swap.
    middle = decoded.audio[:, decoded.length // 4 : 3 * decoded.length // 4]
    assert peak_frequency(middle[0], decoded.rate) == pytest.approx(440, abs=8)
    if pcm.shape[0] == 2:
        assert peak_frequency(middle[1], decoded.rate) == pytest.approx(1250, abs=8)


@pytest.mark.parametrize("name", ["pcm", "alaw", "ulaw", "gsm"])
def test_wav_format_tag(tmp_path: Path, name: str) -> None:
    pcm = two_tones(0.2)[:1]
    encode_file(tmp_path / "x", pcm, RATE, FORMATS[name])
    header = (tmp_path / "x").read_bytes()[:36]
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<H", header, 20)[0] == WAV_FORMAT_TAG[name]


@pytest.mark.parametrize(("name", "table"), [("alaw", ALAW_TO_PCM), ("ulaw", ULAW_TO_PCM)])
def test_g711_wav_keeps_g711_input_bit_exact(tmp_path: Path, name: str, table: Pcm) -> None:
    # Audio that came in as G.711 and goes out as G.711 WAV loses nothing.
    codes = np.random.default_rng(7).integers(0, 256, size=(2, 4000))
    pcm = table[codes]
    encode_file(tmp_path / "x", pcm, RATE, FORMATS[name])
    assert np.array_equal(decode(tmp_path / "x").audio, pcm.astype(np.float64))


def test_stereo_opus_is_two_uncoupled_streams(tmp_path: Path) -> None:
    pcm = two_tones(0.5)
    encode_file(tmp_path / "x", pcm, RATE, FORMATS["opus"])
    head = decode(tmp_path / "x").extradata
    # RFC 7845 OpusHead: channels, pre-skip, input rate, gain, family, then for family
    # 255 the stream count, coupled count and channel mapping.
    assert head[:8] == b"OpusHead"
    channels, _preskip, input_rate, _gain, family = struct.unpack_from("<BHIhB", head, 9)
    assert (channels, input_rate, family) == (2, RATE, 255)
    assert tuple(head[19:23]) == (2, 0, 0, 1)  # 2 streams, 0 coupled, channel i <- stream i


def test_mono_opus_uses_family_zero(tmp_path: Path) -> None:
    encode_file(tmp_path / "x", two_tones(0.5)[:1], RATE, FORMATS["opus"])
    head = decode(tmp_path / "x").extradata
    assert head[9] == 1 and head[18] == 0


@pytest.mark.parametrize("name", STEREO)
@pytest.mark.parametrize("talking", [0, 1])
def test_silent_channel_stays_silent_while_the_other_party_talks(
    tmp_path: Path, name: str, talking: int
) -> None:
    agent = speech(*AGENT)
    pcm = np.zeros((2, len(agent)), np.int16)
    pcm[talking] = agent
    encode_file(tmp_path / "x", pcm, RATE, FORMATS[name])
    audio = decode(tmp_path / "x").audio
    assert level_db(audio[talking]) - level_db(audio[1 - talking]) >= 40


def test_opus_double_talk_keeps_each_party_in_its_channel(tmp_path: Path) -> None:
    pcm = both_parties()
    encode_file(tmp_path / "x", pcm, RATE, FORMATS["opus"])
    audio = decode(tmp_path / "x").audio[:, ::6]  # 48 kHz -> 8 kHz is enough to correlate

    def corr(a: npt.NDArray[np.float64], b: Pcm) -> float:
        return float(np.corrcoef(a[: len(b)], b.astype(np.float64))[0, 1])

    assert corr(audio[0], pcm[0]) > 0.6 and abs(corr(audio[0], pcm[1])) < 0.1
    assert corr(audio[1], pcm[1]) > 0.6 and abs(corr(audio[1], pcm[0])) < 0.1


@pytest.mark.parametrize("rate", [8000, 12000, 16000, 24000, 48000])
def test_opus_takes_its_native_rates_without_resampling(tmp_path: Path, rate: int) -> None:
    pcm = np.stack([tone(440, 0.7, rate), tone(1000, 0.7, rate)])
    result = encode_file(tmp_path / "x", pcm, rate, FORMATS["opus"])
    decoded = decode(tmp_path / "x")
    assert result.sample_rate == rate
    assert struct.unpack_from("<I", decoded.extradata, 12)[0] == rate
    assert decoded.length == pcm.shape[1] * 48000 // rate


def test_opus_bit_rate_is_per_channel(tmp_path: Path) -> None:
    pcm = both_parties()
    seconds = pcm.shape[1] / RATE
    for per_channel in (8, 24):
        fmt = OutputFormat("ogg", "opus", opus_bitrate=per_channel)
        size = encode_file(tmp_path / "x", pcm, RATE, fmt).size_bytes
        kbit_s = size * 8 / seconds / 1000
        # VBR on speech lands near the target; headers and Ogg pages add a little.
        assert 0.7 * 2 * per_channel < kbit_s < 1.2 * 2 * per_channel


def test_opus_complexity_reaches_the_encoder(tmp_path: Path) -> None:
    pcm = np.stack([speech(*AGENT), speech(*AGENT)])
    low = encode_file(tmp_path / "a", pcm, RATE, OutputFormat("ogg", "opus", opus_complexity=0))
    high = encode_file(tmp_path / "b", pcm, RATE, OutputFormat("ogg", "opus", opus_complexity=10))
    assert low.sha256 != high.sha256


@pytest.mark.parametrize("bitrate", MP3_BITRATES)
@pytest.mark.parametrize("rate", [8000, 16000])
def test_mp3_bit_rates_at_narrow_and_wide_band(tmp_path: Path, bitrate: int, rate: int) -> None:
    fmt = OutputFormat("mp3", "mp3", mp3_bitrate=bitrate)
    encode_file(tmp_path / "x", np.stack([tone(440, 0.5, rate)] * 2), rate, fmt)
    with av.open(str(tmp_path / "x")) as container:
        stream = container.streams.audio[0]
        assert (stream.sample_rate, stream.bit_rate) == (rate, bitrate * 1000)


def test_mp3_encoder_delay_is_trimmed_through_the_lame_tag(tmp_path: Path) -> None:
    pcm = np.zeros((1, RATE), dtype=np.int16)
    pcm[0, 3000] = 30000  # a click at a known sample
    encode_file(tmp_path / "x", pcm, RATE, FORMATS["mp3"])
    audio = decode(tmp_path / "x").audio[0]
    assert len(audio) == RATE
    assert int(np.argmax(np.abs(audio))) == 3000


@pytest.mark.parametrize(
    ("rate", "bitrate", "message"),
    [
        (48000, 16, "MP3 at 48000 Hz (MPEG-1) needs at least 32 kbit/s, got 16"),
        (7000, 32, "MP3 cannot hold 7000 Hz audio; allowed: 8000, 11025, 12000, 16000, "),
    ],
)
def test_mp3_refuses_what_lame_cannot_do(
    tmp_path: Path, rate: int, bitrate: int, message: str
) -> None:
    fmt = OutputFormat("mp3", "mp3", mp3_bitrate=bitrate)
    with pytest.raises(EncodeError) as error:
        AudioEncoder(tmp_path / "x", fmt, channels=1, sample_rate=rate)
    assert str(error.value).startswith(message)
    assert not (tmp_path / "x").exists()


def test_mp3_at_48k_from_32_kbits(tmp_path: Path) -> None:
    fmt = OutputFormat("mp3", "mp3", mp3_bitrate=32)
    result = encode_file(tmp_path / "x", tone(440, 0.3, 48000)[None], 48000, fmt)
    assert decode(tmp_path / "x").length == result.duration_s * 48000


def test_gsm_refuses_stereo(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match=r"^GSM 6\.10 in WAV is mono only, got 2 channels$"):
        encode_file(tmp_path / "x", two_tones(0.2), RATE, FORMATS["gsm"])
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("rate", [16000, 48000])
def test_gsm_resamples_wideband_to_8k(tmp_path: Path, rate: int) -> None:
    pcm = tone(700, 1.0, rate)[None]
    result = encode_file(tmp_path / "x", pcm, rate, FORMATS["gsm"])
    decoded = decode(tmp_path / "x")
    assert result.sample_rate == decoded.rate == 8000
    assert result.duration_s == 1.0
    assert 8000 - 2 <= decoded.length <= 8320
    assert peak_frequency(decoded.audio[0, 800:7200], 8000) == pytest.approx(700, abs=8)
    # The fact chunk carries the exact 8 kHz sample count.
    data = (tmp_path / "x").read_bytes()
    fact = data.index(b"fact")
    assert struct.unpack_from("<I", data, fact + 8)[0] in (7999, 8000, 8001)


def test_vorbis_quality_sets_the_size(tmp_path: Path) -> None:
    pcm = np.stack([speech(*AGENT), speech(*AGENT)])
    sizes = [
        encode_file(
            tmp_path / "x", pcm, RATE, OutputFormat("ogg", "vorbis", vorbis_quality=q)
        ).size_bytes
        for q in (0, 4, 10)
    ]
    assert sizes[0] < sizes[1] < sizes[2]


def test_vorbis_long_stream_decodes_to_the_exact_length(tmp_path: Path) -> None:
    pcm = np.tile(both_parties(), 3)
    encode_file(tmp_path / "x", pcm, RATE, FORMATS["vorbis"])
    assert (tmp_path / "x").read_bytes().count(b"OggS") > 3  # more than one audio page
    assert decode(tmp_path / "x").length == pcm.shape[1]


@pytest.mark.parametrize("name", FORMATS)
def test_empty_input_is_refused_and_leaves_no_file(tmp_path: Path, name: str) -> None:
    channels = 1 if name == "gsm" else 2
    with pytest.raises(EncodeError, match=r"^no audio to encode into x: 0 samples written$"):
        encode_file(tmp_path / "x", np.zeros((channels, 0), np.int16), RATE, FORMATS[name])
    assert not (tmp_path / "x").exists()


def chunked(path: Path, fmt: OutputFormat, pcm: Pcm, sizes: list[int]) -> None:
    with AudioEncoder(path, fmt, channels=pcm.shape[0], sample_rate=RATE) as encoder:
        offset = 0
        for size in sizes:
            encoder.write(pcm[:, offset : offset + size])
            offset += size
        encoder.write(pcm[:, offset:])


# Chunk sizes around the 20 ms frame, an empty chunk, and one past the internal batch.
CHUNKS = [0, 1, 159, 160, 161, 37_000, 7, 0, 12_345]


@pytest.mark.parametrize("name", ["pcm", "alaw", "ulaw", "gsm"])
def test_chunked_writes_give_the_same_bytes_for_pcm_formats(tmp_path: Path, name: str) -> None:
    pcm = np.stack([speech(*AGENT), np.roll(speech(*AGENT), 1234)])[: 1 if name == "gsm" else 2]
    whole = encode_file(tmp_path / "whole", pcm, RATE, FORMATS[name])
    chunked(tmp_path / "parts", FORMATS[name], pcm, CHUNKS)
    assert (tmp_path / "parts").read_bytes() == (tmp_path / "whole").read_bytes()
    assert whole.duration_s == pcm.shape[1] / RATE


@pytest.mark.parametrize("name", ["opus", "vorbis", "mp3"])
def test_chunked_writes_give_the_same_length_for_lossy_formats(tmp_path: Path, name: str) -> None:
    pcm = np.stack([speech(*AGENT), np.roll(speech(*AGENT), 1234)])
    encode_file(tmp_path / "whole", pcm, RATE, FORMATS[name])
    chunked(tmp_path / "parts", FORMATS[name], pcm, CHUNKS)
    assert decode(tmp_path / "parts").length == decode(tmp_path / "whole").length


def test_a_reused_caller_buffer_does_not_change_what_was_written(tmp_path: Path) -> None:
    pcm = two_tones(0.5)
    buffer = np.empty((2, 160), np.int16)
    with AudioEncoder(tmp_path / "x", FORMATS["pcm"], channels=2, sample_rate=RATE) as encoder:
        for start in range(0, pcm.shape[1], 160):
            buffer[:] = pcm[:, start : start + 160]
            encoder.write(buffer)
        buffer[:] = 0
    assert np.array_equal(decode(tmp_path / "x").audio, pcm.astype(np.float64))


def test_close_is_idempotent_and_write_after_close_fails(tmp_path: Path) -> None:
    encoder = AudioEncoder(tmp_path / "x", FORMATS["opus"], channels=2, sample_rate=RATE)
    encoder.write(two_tones(0.1))
    first = encoder.close()
    assert encoder.close() is first
    with pytest.raises(EncodeError, match=r"^write after close$"):
        encoder.write(two_tones(0.1))


def test_an_error_inside_the_block_removes_the_partial_file(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="mixer failed"),
        AudioEncoder(tmp_path / "x", FORMATS["opus"], channels=2, sample_rate=RATE) as encoder,
    ):
        encoder.write(two_tones(0.1))
        raise RuntimeError("mixer failed")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (np.zeros((2, 10), np.int32), r"^expected int16 audio shaped \(2, n\), got int32 shaped"),
        (np.zeros((1, 10), np.int16), r"^expected int16 audio shaped \(2, n\), got int16 shaped"),
        (np.zeros(10, np.int16), r"^expected int16 audio shaped \(2, n\), got int16 shaped"),
    ],
)
def test_write_refuses_wrong_shape_or_type(tmp_path: Path, pcm: Pcm, message: str) -> None:
    with AudioEncoder(tmp_path / "x", FORMATS["pcm"], channels=2, sample_rate=RATE) as encoder:
        with pytest.raises(EncodeError, match=message):
            encoder.write(pcm)
        encoder.write(two_tones(0.1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"container": "flac", "codec": "flac"},
            "unknown container 'flac'; allowed: mp3, ogg, wav",
        ),
        (
            {"container": "wav", "codec": "opus"},
            "codec 'opus' is not available in wav; allowed: pcm, alaw, ulaw, gsm",
        ),
        (
            {"container": "mp3", "codec": "mp3", "mp3_bitrate": 40},
            "MP3 bit rate 40 kbit/s not one of 8, 16, 24, 32, 48",
        ),
        (
            {"container": "ogg", "codec": "opus", "opus_bitrate": 5},
            "Opus bit rate 5 kbit/s per channel not in 6..128",
        ),
        (
            {"container": "ogg", "codec": "vorbis", "vorbis_quality": 11},
            "Vorbis quality 11 not in 0..10",
        ),
        (
            {"container": "ogg", "codec": "opus", "opus_complexity": -1},
            "Opus complexity -1 not in 0..10",
        ),
    ],
)
def test_output_format_refuses_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EncodeError) as error:
        OutputFormat(**kwargs)  # type: ignore[arg-type]
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("fmt", "channels", "rate", "message"),
    [
        (FORMATS["opus"], 2, 44100, "Opus takes 8000, 12000, 16000, 24000 or 48000 Hz input"),
        (FORMATS["mp3"], 3, 8000, "MP3 holds mono or stereo, got 3 channels"),
        (FORMATS["pcm"], 0, 8000, "at least one channel is needed, got 0"),
    ],
)
def test_encoder_refuses_layouts_the_format_cannot_hold(
    tmp_path: Path, fmt: OutputFormat, channels: int, rate: int, message: str
) -> None:
    with pytest.raises(EncodeError) as error:
        AudioEncoder(tmp_path / "x", fmt, channels=channels, sample_rate=rate)
    assert str(error.value).startswith(message)


def test_three_party_opus_keeps_every_channel_apart(tmp_path: Path) -> None:
    pcm = np.stack([tone(440, 0.6), np.zeros(4800, np.int16), tone(1250, 0.6)])
    encode_file(tmp_path / "x", pcm, RATE, FORMATS["opus"])
    decoded = decode(tmp_path / "x")
    assert decoded.extradata[18:21] == bytes([255, 3, 0])
    middle = decoded.audio[:, 4800:24000]
    assert peak_frequency(middle[0], 48000) == pytest.approx(440, abs=8)
    assert peak_frequency(middle[2], 48000) == pytest.approx(1250, abs=8)
    assert level_db(middle[0]) - level_db(middle[1]) >= 40


@pytest.mark.parametrize(
    ("name", "extension", "mime", "browser"),
    [
        ("opus", "ogg", "audio/ogg; codecs=opus", True),
        ("vorbis", "ogg", "audio/ogg; codecs=vorbis", True),
        ("mp3", "mp3", "audio/mpeg", True),
        ("alaw", "wav", "audio/wav", True),
        ("gsm", "wav", "audio/wav", False),
    ],
)
def test_extension_and_mime_type(name: str, extension: str, mime: str, browser: bool) -> None:
    fmt = FORMATS[name]
    assert (fmt.extension, fmt.mime_type, fmt.plays_in_browser) == (extension, mime, browser)


def test_default_format_is_12_kbits_per_channel_at_complexity_6() -> None:
    fmt = OutputFormat("ogg", "opus")
    assert (fmt.opus_bitrate, fmt.opus_complexity) == (12, 6)


def test_a_long_vorbis_recording_is_written_in_bounded_chunks(tmp_path: Path) -> None:
    # Five minutes of stereo in one write: libsndfile's Vorbis writer used to need stack
    # in proportion to one call's frames and killed the process past about 4.4 minutes.
    pcm = np.zeros((2, 5 * 60 * 8000), np.int16)
    pcm[0, ::80] = 1000
    result = encode_file(tmp_path / "long.ogg", pcm, 8000, OutputFormat("ogg", "vorbis"))
    assert result.duration_s == 300.0
    with av.open(str(tmp_path / "long.ogg")) as container:
        assert container.streams.audio[0].codec_context.name == "vorbis"


def test_wideband_audio_gets_the_wideband_opus_bit_rate(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    fmt = OutputFormat("ogg", "opus", opus_bitrate=12, opus_bitrate_wideband=24)
    sizes = {}
    for rate in (8000, 16000):
        noise = (rng.standard_normal((1, 20 * rate)) * 4000).astype(np.int16)
        sizes[rate] = encode_file(tmp_path / f"{rate}.ogg", noise, rate, fmt).size_bytes
    # Noise keeps VBR at its target: about 12 and 24 kbit/s for 20 s.
    assert sizes[8000] == pytest.approx(12_000 * 20 / 8, rel=0.2)
    assert sizes[16000] == pytest.approx(24_000 * 20 / 8, rel=0.2)
