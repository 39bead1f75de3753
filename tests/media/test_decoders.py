"""Every codec: encode a known signal, packetize, decode packet by packet, listen.

Thresholds (SNR of the decoded audio against the source at the codec's delay; measured
values in brackets, the bar a few dB below): G.711 30 dB [39], G.722 45 dB on a tone
[57] and 22 dB on a chirp [28], GSM 25 dB on a tone [30], G.729 18 dB on a tone [24],
Opus 30 dB on a tone [39] and 18 dB on a chirp [23]; AMR and AMR-WB are parametric
and score 9-15 dB on a tone, so they are held to 6 dB and to the frequency.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.media.amr import NO_DATA, AmrFrame, AmrPayload
from callvault.media.decoders import (
    CODECS,
    NON_AUDIO,
    FfmpegOpusDecoder,
    LibopusDecoder,
    PayloadDecoder,
    UndecodablePayload,
    UnsupportedCodec,
    _libopus,
    _load_libopus,
    audio_rate,
    decoder_for,
)
from callvault.media.dtmf import collect_dtmf
from callvault.media.g711 import AlawDecoder, UlawDecoder
from callvault.media.timeline import StreamPacket
from callvault.rtp.packet import RtpPacket, parse_rtp
from callvault.rtp.pcap import read_pcap
from tests.media.payloads import (
    EncodedStream,
    aligned_snr,
    amr_storage_frames,
    chirp,
    dominant_frequency,
    dtmf_packets,
    encode_amr,
    encode_amr_wb,
    encode_g722,
    encode_g729,
    encode_gsm,
    encode_opus,
    encode_pcma,
    encode_pcmu,
    g729_frames,
    pack_amr,
    tone,
    two_tone,
    write_capture,
)

Pcm = npt.NDArray[np.int16]


def decode_all(stream: EncodedStream, decoder: PayloadDecoder | None = None) -> list[Pcm]:
    decoder = decoder or decoder_for(stream.codec, stream.clock_rate, stream.fmtp, stream.channels)
    out = [decoder.decode(payload) for payload in stream.payloads]
    assert all(pcm.dtype == np.int16 and pcm.ndim == 1 for pcm in out)
    return out


def check(stream: EncodedStream, source: Pcm, rate: int, *, snr: float, per_payload: int) -> Pcm:
    """Every payload gives its span, the tone is at 440 Hz, the SNR clears ``snr``."""
    pieces = decode_all(stream)
    assert [len(p) for p in pieces] == [per_payload] * len(stream.payloads)
    pcm = np.concatenate(pieces)
    assert len(pcm) == len(stream.payloads) * per_payload
    assert dominant_frequency(pcm[rate // 4 :], rate) == pytest.approx(440, abs=2)
    measured, _ = aligned_snr(source, pcm, 1000)
    assert measured > snr
    return pcm


# --- registry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "clock", "fmtp", "rate"),
    [
        ("PCMU", 8000, None, 8000),
        ("pcma", 8000, None, 8000),
        ("G722", 8000, None, 16000),
        ("g729", 8000, "annexb=yes", 8000),
        ("GSM", 8000, None, 8000),
        ("AMR", 8000, "octet-align=1; mode-set=7", 8000),
        ("amr-wb", 16000, None, 16000),
        ("opus", 48000, None, 16000),
        ("OPUS", 48000, "useinbandfec=1; stereo=1", 16000),
        ("opus", 48000, "sprop-maxcapturerate=16000", 16000),
        ("opus", 48000, "maxplaybackrate=48000;sprop-maxcapturerate=48000", 48000),
        ("opus", 48000, "sprop-maxcapturerate=wide", 16000),
    ],
)
def test_audio_rate_is_what_the_decoder_produces(
    codec: str, clock: int, fmtp: str | None, rate: int
) -> None:
    assert audio_rate(codec, clock, fmtp) == rate
    assert decoder_for(codec, clock, fmtp).sample_rate == rate


def test_g711_decoders_are_the_table_lookups() -> None:
    assert isinstance(decoder_for("PCMU", 8000), UlawDecoder)
    assert isinstance(decoder_for("PCMA", 8000), AlawDecoder)


def test_opus_uses_libopus_directly_here() -> None:
    # The fast path (libopus through ctypes) must be the one CI exercises.
    assert isinstance(decoder_for("opus", 48000, channels=2), LibopusDecoder)


@pytest.mark.parametrize(
    ("codec", "clock", "fmtp", "channels", "message"),
    [
        ("telephone-event", 8000, None, 1, "telephone-event/8000 carries no audio: not decoded"),
        ("CN", 8000, None, 1, "CN/8000 carries no audio: not decoded"),
        (
            "iLBC",
            8000,
            None,
            1,
            "iLBC/8000: unknown codec (decodable: PCMU, PCMA, G722, G729, GSM, AMR, AMR-WB, opus)",
        ),
        ("G722", 16000, None, 1, "G722/16000: the RTP clock rate of G722 is 8000"),
        ("opus", 16000, None, 1, "opus/16000: the RTP clock rate of opus is 48000"),
        ("PCMU", 8000, None, 2, "PCMU/8000/2: 2-channel PCMU is not supported"),
        ("opus", 48000, None, 3, "opus/48000/3: 3-channel opus is not supported"),
        (
            "AMR",
            8000,
            "octet-align=1; crc=1",
            1,
            "AMR/8000 with crc=1 (frame CRCs) is not supported: rare, and its payloads differ"
            " from plain octet-aligned",
        ),
        (
            "AMR-WB",
            16000,
            "octet-align=1;robust-sorting=1",
            1,
            "AMR-WB/16000 with robust-sorting=1 (robust sorting) is not supported: rare, and"
            " its payloads differ from plain octet-aligned",
        ),
        (
            "AMR",
            8000,
            "octet-align=1;interleaving=4",
            1,
            "AMR/8000 with interleaving=4 (interleaving) is not supported: rare, and its"
            " payloads differ from plain octet-aligned",
        ),
    ],
)
def test_unsupported_streams_say_why(
    codec: str, clock: int, fmtp: str | None, channels: int, message: str
) -> None:
    with pytest.raises(UnsupportedCodec) as error:
        decoder_for(codec, clock, fmtp, channels)
    assert str(error.value) == message
    if channels == 1:
        with pytest.raises(UnsupportedCodec):
            audio_rate(codec, clock, fmtp)


def test_registry_lists_every_codec_and_no_signalling() -> None:
    assert sorted(CODECS) == ["amr", "amr-wb", "g722", "g729", "gsm", "opus", "pcma", "pcmu"]
    assert {"telephone-event", "cn"} == NON_AUDIO
    assert decoder_for("AMR", 8000, "crc=0; robust-sorting=0").sample_rate == 8000


# --- G.711, G.722, GSM ------------------------------------------------------------------


@pytest.mark.parametrize("encode", [encode_pcmu, encode_pcma])
def test_g711(encode: Callable[[Pcm], EncodedStream]) -> None:
    source = tone(440, 2, 8000)
    stream = encode(source)
    check(stream, source, 8000, snr=30, per_payload=160)


def test_g722_gives_16_khz_from_an_8000_clock() -> None:
    source = tone(440, 2, 16000)
    stream = encode_g722(source)
    assert {len(p) for p in stream.payloads} == {160}
    check(stream, source, 16000, snr=45, per_payload=320)
    sweep = chirp(300, 7000, 2, 16000)
    pcm = np.concatenate(decode_all(encode_g722(sweep)))
    assert aligned_snr(sweep, pcm)[0] > 22


def test_g722_other_packet_times() -> None:
    source = tone(440, 1.2, 16000)
    pieces = decode_all(encode_g722(source, ptime=30))
    assert {len(p) for p in pieces} == {480}


def test_gsm() -> None:
    source = tone(440, 2, 8000)
    stream = encode_gsm(source)
    assert {len(p) for p in stream.payloads} == {33}
    check(stream, source, 8000, snr=25, per_payload=160)
    pieces = decode_all(encode_gsm(source, ptime=40))
    assert {len(p) for p in pieces} == {320}


# --- G.729 ------------------------------------------------------------------------------


def test_g729() -> None:
    source = tone(440, 2, 8000)
    stream = encode_g729(source)
    assert {len(p) for p in stream.payloads} == {20}
    check(stream, source, 8000, snr=18, per_payload=160)
    pieces = decode_all(encode_g729(source, ptime=30))
    assert {len(p) for p in pieces} == {240}


def test_g729_annex_b_sid_frames_are_dropped_and_speech_kept() -> None:
    # Tone, silence, tone, silence, tone: the VAD sends SID frames (2 bytes), then
    # nothing. The first silence starts mid-packet, so a SID rides behind speech.
    silence = np.zeros(8000, np.int16)
    source = np.concatenate(
        [tone(440, 1.01, 8000), silence, tone(440, 1, 8000), silence, tone(440, 0.99, 8000)]
    )
    stream = encode_g729(source, vad=True)
    assert {len(p) for p in stream.payloads} == {2, 10, 12, 20}
    pieces = decode_all(stream)
    for payload, pcm in zip(stream.payloads, pieces, strict=True):
        assert len(pcm) == 80 * (len(payload) // 10)  # SID-only: empty
    # Timestamps jump over the silence: fewer payloads than 20 ms slots.
    assert stream.timestamps[-1] > 160 * len(stream.payloads)
    voiced = sum(len(p) for p in pieces) // 80
    assert voiced == sum(len(f) == 10 for f in g729_frames(source, vad=True))
    # The speech after the last silence is still the tone.
    last = [p for ts, p in zip(stream.timestamps, pieces, strict=True) if ts >= 8000 * 4]
    assert dominant_frequency(np.concatenate(last)[2000:], 8000) == pytest.approx(440, abs=2)


def test_g729_payload_lengths() -> None:
    decoder = decoder_for("G729", 8000)
    assert len(decoder.decode(b"")) == 0
    assert len(decoder.decode(b"\x12\x34")) == 0  # SID only
    assert len(decoder.decode(bytes(22))) == 160
    with pytest.raises(UndecodablePayload) as error:
        decoder.decode(bytes(13))
    assert str(error.value) == "G729: 13 bytes is not 10-byte frames and an optional 2-byte SID"
    with pytest.raises(UndecodablePayload):
        decoder.decode(bytes(8))  # G.729D frames are another payload name


# --- AMR, AMR-WB ------------------------------------------------------------------------


@pytest.mark.parametrize("octet_aligned", [False, True])
@pytest.mark.parametrize("mode", range(8))
def test_amr_every_mode(mode: int, octet_aligned: bool) -> None:
    source = tone(440, 1, 8000)
    stream = encode_amr(source, mode=mode, octet_aligned=octet_aligned)
    check(stream, source, 8000, snr=6, per_payload=160)


@pytest.mark.parametrize("octet_aligned", [False, True])
@pytest.mark.parametrize("mode", range(9))
def test_amr_wb_every_mode(mode: int, octet_aligned: bool) -> None:
    source = tone(440, 1, 16000)
    stream = encode_amr_wb(source, mode=mode, octet_aligned=octet_aligned)
    check(stream, source, 16000, snr=6, per_payload=320)


@pytest.mark.parametrize("octet_aligned", [False, True])
def test_amr_several_frames_per_payload_with_a_no_data_slot(octet_aligned: bool) -> None:
    source = tone(440, 0.6, 8000)
    frames = amr_storage_frames(source, mode=7)
    frames[4] = bytes([NO_DATA << 3 | 4])
    payloads = [
        pack_amr(frames[i : i + 3], octet_aligned=octet_aligned, cmr=5) for i in range(0, 30, 3)
    ]
    fmtp = "octet-align=1" if octet_aligned else None
    decoder = decoder_for("AMR", 8000, fmtp)
    pcm = np.concatenate([decoder.decode(p) for p in payloads])
    assert len(pcm) == 30 * 160
    assert not pcm[4 * 160 : 5 * 160].any()  # the empty slot is silent, in its place
    assert np.abs(pcm[5 * 160 : 6 * 160]).max() > 2000  # and the next frame is not
    assert dominant_frequency(pcm[6 * 160 :], 8000) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("wideband", [False, True])
def test_amr_dtx_sid_and_no_data_give_silence_of_the_right_length(wideband: bool) -> None:
    rate = 16000 if wideband else 8000
    source = np.concatenate([tone(440, 0.5, rate), np.zeros(rate, np.int16)])
    if wideband:
        stream = encode_amr_wb(source, mode=2, dtx=True, ptime=40)
    else:
        stream = encode_amr(source, mode=7, dtx=True, ptime=40)
    sid = 9 if wideband else 8
    decoder = decoder_for(stream.codec, stream.clock_rate, stream.fmtp)
    seen = set()
    for payload in stream.payloads:
        parsed = AmrPayload.parse(payload, wideband=wideband)
        pcm = decoder.decode(payload)
        assert len(pcm) == len(parsed.frames) * rate // 50
        for index, frame in enumerate(parsed.frames):
            seen.add(frame.frame_type)
            if frame.frame_type in (sid, NO_DATA):
                assert not pcm[index * rate // 50 : (index + 1) * rate // 50].any()
    assert {sid, NO_DATA} <= seen
    # Silence sends no packet at all once the SID updates thin out.
    assert stream.timestamps[-1] > (len(stream.payloads) - 1) * rate // 25


def test_amr_bad_payload_is_undecodable_with_the_parser_message() -> None:
    decoder = decoder_for("AMR", 8000)
    with pytest.raises(UndecodablePayload) as error:
        decoder.decode(b"\xf0")
    assert str(error.value) == "AMR: AMR payload ends inside table of contents entry 1"
    lost = bytes(AmrPayload(15, (AmrFrame(14, True, b""),), wideband=True))
    assert not decoder_for("AMR-WB", 16000).decode(lost).any()


# --- Opus -------------------------------------------------------------------------------


def test_opus_at_16_khz() -> None:
    source = tone(440, 2, 16000)
    stream = encode_opus(source)
    pcm = check(stream, source, 16000, snr=30, per_payload=320)
    assert len(pcm) == len(source) + 320  # the flushed encoder adds one packet
    sweep = chirp(300, 7000, 2, 16000)
    assert aligned_snr(sweep, np.concatenate(decode_all(encode_opus(sweep))))[0] > 18


@pytest.mark.parametrize("ptime", [10, 40, 60])
def test_opus_packet_times(ptime: int) -> None:
    stream = encode_opus(tone(440, 0.6, 16000), ptime=ptime)
    assert {len(p) for p in decode_all(stream)} == {16 * ptime}


def test_opus_at_48_khz_when_the_sender_captures_fullband() -> None:
    source = tone(440, 1, 48000)
    stream = encode_opus(source, rate=48000, fmtp="sprop-maxcapturerate=48000")
    check(stream, source, 48000, snr=20, per_payload=960)


def test_stereo_opus_is_downmixed() -> None:
    left, right = tone(440, 1, 16000), tone(1000, 1, 16000)
    stream = encode_opus(np.stack([left, right], axis=1), stereo=True, bitrate=64000)
    assert stream.payloads[0][0] & 0x04  # the TOC's stereo flag
    pcm = np.concatenate(decode_all(stream))
    assert len(pcm) == 320 * len(stream.payloads)
    spectrum = np.abs(np.fft.rfft(pcm[4000:12000] * np.hanning(8000)))
    freqs = np.fft.rfftfreq(8000, 1 / 16000)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert peaks == pytest.approx([440, 1000], abs=2)


def test_ffmpeg_opus_fallback_gives_exact_spans() -> None:
    source = tone(440, 2, 16000)
    stream = encode_opus(source)
    pieces = decode_all(stream, FfmpegOpusDecoder(16000))
    assert {len(p) for p in pieces} == {320}
    pcm = np.concatenate(pieces)
    assert dominant_frequency(pcm[4000:], 16000) == pytest.approx(440, abs=2)
    assert aligned_snr(source, pcm)[0] > 20  # measured 27: 48 kHz and back costs a little
    with pytest.raises(UndecodablePayload) as error:
        FfmpegOpusDecoder(16000).decode(b"")
    assert str(error.value) == "opus: empty payload"


def test_libopus_loading_and_rates() -> None:
    library = _libopus()
    assert library is not None
    assert _load_libopus("/nonexistent/libopus.so") is None
    with pytest.raises(UnsupportedCodec) as error:
        LibopusDecoder(library, 44100)  # libopus decodes at 8/12/16/24/48 kHz only
    assert str(error.value) == "opus/48000: libopus cannot decode at 44100 Hz"


def test_opus_errors() -> None:
    decoder = decoder_for("opus", 48000)
    with pytest.raises(UndecodablePayload) as error:
        decoder.decode(b"")
    assert str(error.value) == "opus: empty payload"
    with pytest.raises(UndecodablePayload) as error:
        decoder.decode(b"\x03")  # code 3 needs a frame count byte
    assert str(error.value) == "opus: libopus error -4 (invalid packet)"


# --- corrupt payloads ------------------------------------------------------------------

STREAMS = {
    "G722": lambda: encode_g722(tone(440, 1, 16000)),
    "G729": lambda: encode_g729(tone(440, 1, 8000)),
    "GSM": lambda: encode_gsm(tone(440, 1, 8000)),
    "AMR": lambda: encode_amr(tone(440, 1, 8000)),
    "AMR-WB": lambda: encode_amr_wb(tone(440, 1, 16000), octet_aligned=True),
    "opus": lambda: encode_opus(tone(440, 1, 16000)),
}


@pytest.mark.parametrize("codec", sorted(STREAMS))
def test_corrupt_payloads_then_good_ones(codec: str) -> None:
    """Garbage between good packets: undecodable or audio, and the stream recovers."""
    stream = STREAMS[codec]()
    decoder = decoder_for(stream.codec, stream.clock_rate, stream.fmtp)
    rng = np.random.default_rng(3)
    out = []
    for index, payload in enumerate(stream.payloads):
        if index % 5 == 2:
            noise = rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes()
            for corrupt in (noise, payload[: len(payload) // 2], payload + b"\x00"):
                with contextlib.suppress(UndecodablePayload):
                    assert decoder.decode(corrupt).dtype == np.int16
        out.append(decoder.decode(payload))
    tail = np.concatenate(out[-15:])
    assert dominant_frequency(tail, decoder.sample_rate) == pytest.approx(440, abs=4)


# (codec, clock rate, fmtp, samples per smallest unit of audio)
SPECS = [
    ("PCMU", 8000, None, 1),
    ("PCMA", 8000, None, 1),
    ("G722", 8000, None, 2),
    ("G729", 8000, None, 80),
    ("GSM", 8000, None, 160),
    ("AMR", 8000, None, 160),
    ("AMR", 8000, "octet-align=1", 160),
    ("AMR-WB", 16000, None, 320),
    ("AMR-WB", 16000, "octet-align=1", 320),
    ("opus", 48000, None, 40),  # 2.5 ms at 16 kHz
]


@pytest.mark.parametrize(("codec", "clock", "fmtp", "unit"), SPECS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(st.binary(max_size=120), min_size=1, max_size=6))
def test_random_bytes_never_raise_anything_else(
    codec: str, clock: int, fmtp: str | None, unit: int, data: list[bytes]
) -> None:
    decoder = decoder_for(codec, clock, fmtp)
    for payload in data:
        try:
            pcm = decoder.decode(payload)
        except UndecodablePayload:
            continue
        assert pcm.dtype == np.int16 and pcm.ndim == 1
        assert len(pcm) % unit == 0


@settings(max_examples=100)
@given(data=st.lists(st.binary(max_size=80), min_size=1, max_size=6))
def test_random_bytes_through_the_opus_fallback(data: list[bytes]) -> None:
    decoder = FfmpegOpusDecoder(16000)
    for payload in data:
        try:
            pcm = decoder.decode(payload)
        except UndecodablePayload:
            continue
        assert pcm.dtype == np.int16 and len(pcm) % 40 == 0


# --- through a capture file ------------------------------------------------------------


def test_a_capture_of_two_codecs_and_dtmf_decodes_back(tmp_path: Path) -> None:
    """payloads.write_capture writes what the recorder would; reading it back and
    decoding each source gives the audio that was sent."""
    t0 = 1_700_000_000.0
    caller, callee, recorder = ("192.0.2.10", 40000), ("192.0.2.20", 40002), "198.51.100.7"
    amr = encode_amr(two_tone(440, 1000, 1, 8000), mode=7)
    opus = encode_opus(tone(440, 1, 16000))
    dtmf = dtmf_packets("42", t0=t0 + 0.2, ssrc=0x1111)
    flows = [
        (caller, (recorder, 20000), amr.packets(t0=t0, ssrc=0x1111, payload_type=97) + dtmf),
        (callee, (recorder, 20002), opus.packets(t0=t0 + 0.01, ssrc=0x2222, payload_type=111)),
    ]
    path = tmp_path / "call.pcap"
    assert write_capture(path, flows) == len(amr.payloads) + len(dtmf) + len(opus.payloads)

    by_port: dict[int, list[RtpPacket]] = {20000: [], 20002: []}
    arrivals = []
    events = []
    for captured in read_pcap(path):
        packet = parse_rtp(captured.payload)
        by_port[captured.dst[1]].append(packet)
        arrivals.append(captured.ts)
        if packet.payload_type == 101:
            fields = (packet.sequence_number, packet.timestamp, packet.ssrc, 101, packet.payload)
            events.append(StreamPacket(captured.ts, *fields))
    assert arrivals == sorted(arrivals)
    keys = collect_dtmf(events, payload_type=101, clock_rate=8000)
    assert [(k.digit, round(k.start - t0, 3)) for k in keys] == [("4", 0.2), ("2", 0.4)]
    audio = [p for p in by_port[20000] if p.payload_type == 97]
    assert [p.payload for p in audio] == amr.payloads
    assert [p.timestamp - audio[0].timestamp for p in audio] == amr.timestamps
    decoder = decoder_for("AMR", 8000)
    expected = np.concatenate(decode_all(amr))
    assert np.array_equal(np.concatenate([decoder.decode(p.payload) for p in audio]), expected)
    assert {p.payload_type for p in by_port[20000]} == {97, 101}
    opus_decoder = decoder_for("opus", 48000, channels=2)
    pcm = np.concatenate([opus_decoder.decode(p.payload) for p in by_port[20002]])
    assert dominant_frequency(pcm[4000:], 16000) == pytest.approx(440, abs=2)
