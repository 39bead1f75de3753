"""Render a synthesised two-party capture into a WAV file and check what a listener would."""

from __future__ import annotations

import dataclasses
import random
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pylibsrtp import Policy, Session

from callvault.media.g711 import decode_alaw, decode_ulaw
from callvault.media.render import (
    ChannelSpec,
    StreamSelector,
    UnsupportedCodec,
    render_stereo_wav,
)
from callvault.media.timeline import StreamPacket
from callvault.rtp.pcap import PcapWriter
from callvault.rtp.rtcp import ReceiverReport
from tests.media.synth import RATE, frames, peak_frequency, rms, stream_packets, to_rtp, tone

T0 = 1_700_000_000.0
CALLER = ("192.0.2.10", 40000)
CALLEE = ("192.0.2.20", 40002)
LEFT_PORT, RIGHT_PORT = 20000, 20002
RECORDER = "198.51.100.7"
LEFT = StreamSelector(LEFT_PORT, "PCMU", 0)
RIGHT_PAUSE = (T0 + 5.0, T0 + 6.0)
RIGHT = StreamSelector(RIGHT_PORT, "PCMA", 8, paused=[RIGHT_PAUSE])
LOST = range(100, 125)  # 2.0 s to 2.5 s into the left stream
KEY = bytes(range(30))


def left_audio() -> npt.NDArray[np.int16]:
    return tone(440, 10.0)


def right_audio() -> npt.NDArray[np.int16]:
    return tone(1000, 10.0)


def left_packets() -> list[StreamPacket]:
    """440 Hz PCMU from T0: 25 packets lost, some late (reordered), one duplicated."""
    rng = random.Random(1)
    packets = stream_packets(frames(left_audio(), "PCMU"), t0=T0, ssrc=0x1111)
    out = []
    for i, packet in enumerate(packets):
        if i in LOST:
            continue
        delay = rng.choice([0.0, 0.0, 0.0, 0.004, 0.015, 0.045])  # 45 ms: overtaken
        out.append(dataclasses.replace(packet, arrival=packet.arrival + delay))
    out.append(dataclasses.replace(packets[300], arrival=packets[300].arrival + 0.03))
    # A DTMF event takes the sequence number of the last lost audio packet.
    out.append(StreamPacket(T0 + 2.48, 1124, 50_000 + 160 * 124, 0x1111, 101, b"\x01\x0a\x00\xa0"))
    return sorted(out, key=lambda p: p.arrival)


def right_packets() -> list[StreamPacket]:
    """1000 Hz PCMA from T0 + 0.3 s; the sender stops during the pause."""
    packets = stream_packets(
        frames(right_audio(), "PCMA"), t0=T0 + 0.3, ssrc=0x2222, payload_type=8, seq0=60000
    )
    return [p for p in packets if not RIGHT_PAUSE[0] <= p.arrival < RIGHT_PAUSE[1]]


def write_capture(path: Path, *, srtp_left: bool = False) -> None:
    wire = {p.sequence_number: to_rtp(p) for p in left_packets()}
    if srtp_left:
        # The sender protects in sequence order; the network reorders and duplicates.
        tx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        wire = {seq: tx.protect(wire[seq]) for seq in sorted(wire)}
    datagrams = [(p.arrival, CALLER, LEFT_PORT, wire[p.sequence_number]) for p in left_packets()]
    datagrams += [(p.arrival, CALLEE, RIGHT_PORT, to_rtp(p)) for p in right_packets()]
    datagrams.append((T0 + 1.0, CALLER, LEFT_PORT, bytes(ReceiverReport(0x1111))))  # rtcp-mux
    datagrams.append((T0 + 1.5, CALLER, LEFT_PORT, b"garbage"))
    datagrams.append((T0 + 2.0, CALLER, 20004, to_rtp(left_packets()[0])))  # another stream
    datagrams.sort(key=lambda d: d[0])
    with path.open("wb") as fileobj:
        writer = PcapWriter(fileobj)
        writer.write_header()
        for ts, src, port, data in datagrams:
            writer.write_packet(ts, src, (RECORDER, port), data)


def read_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as w:
        assert (w.getsampwidth(), w.getframerate()) == (2, RATE)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getnchannels(), data.reshape(-1, w.getnchannels())


def at(seconds: float) -> int:
    return round(seconds * RATE)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "session.pcap"
    write_capture(path)
    return path


def test_stereo_render_puts_each_party_on_its_channel(capture: Path, tmp_path: Path) -> None:
    output = tmp_path / "call.wav"
    result = render_stereo_wav(capture, [ChannelSpec([LEFT]), ChannelSpec([RIGHT])], output)

    assert (result.channels, result.sample_rate) == (2, 8000)
    assert result.duration_s == pytest.approx(10.3, abs=0.02)
    assert result.start == pytest.approx(T0, abs=1e-6)
    channels, pcm = read_wav(output)
    assert channels == 2 and len(pcm) == result.samples
    left, right = pcm[:, 0], pcm[:, 1]

    assert peak_frequency(left[at(3.0) : at(9.0)]) == pytest.approx(440, abs=2)
    assert peak_frequency(right[at(6.5) : at(10.0)]) == pytest.approx(1000, abs=2)
    # Where packets arrived the samples are exactly the decoded ones, in their place.
    expected_left = decode_ulaw(b"".join(frames(left_audio(), "PCMU")))
    assert np.array_equal(left[: at(2.0)], expected_left[: at(2.0)])
    assert np.array_equal(left[at(2.5) : at(10.0)], expected_left[at(2.5) :])
    expected_right = decode_alaw(b"".join(frames(right_audio(), "PCMA")))
    assert np.array_equal(right[at(0.3) : at(5.0)], expected_right[: at(4.7)])

    assert rms(left[at(2.0) : at(2.5)]) == 0  # lost packets
    assert rms(left[at(10.0) :]) == 0  # the left party had finished
    assert rms(right[: at(0.3)]) == 0  # the right party started later
    assert rms(right[at(5.0) : at(6.0)]) == 0  # paused
    assert rms(left[at(1.5) : at(2.0)]) > 4000 and rms(right[at(6.0) : at(6.5)]) > 4000

    left_stats, right_stats = result.channel_stats
    assert left_stats.packets_used == 500 - len(LOST)
    assert left_stats.silence_ratio == pytest.approx((0.5 + 0.3) / 10.3, abs=0.003)
    assert right_stats.packets_used == 450
    assert right_stats.silence_ratio == pytest.approx((0.3 + 1.0) / 10.3, abs=0.003)
    (stream,) = left_stats.streams
    assert (stream.local_port, stream.duplicates, stream.skipped, stream.undecodable) == (
        LEFT_PORT,
        1,
        1,
        1,
    )
    assert stream.segments == 1


def test_mono_mix_of_both_parties(capture: Path, tmp_path: Path) -> None:
    output = tmp_path / "mono.wav"
    result = render_stereo_wav(capture, [ChannelSpec([LEFT, RIGHT])], output)
    channels, pcm = read_wav(output)
    assert channels == 1 and result.channels == 1
    mixed = pcm[at(3.0) : at(4.0), 0]
    spectrum = np.abs(np.fft.rfft(mixed.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(mixed), 1 / RATE)
    strongest = set(np.round(freqs[np.argsort(spectrum)[-2:]]).tolist())
    assert strongest == {440.0, 1000.0}
    # Each party's gaps (loss, late start, pause) are covered by the other party.
    assert result.channel_stats[0].silence_ratio == 0.0
    assert result.channel_stats[0].packets_used == 475 + 450


def test_mixing_clips_instead_of_wrapping(tmp_path: Path) -> None:
    loud = tone(440, 1.0, amplitude=30000)
    capture = tmp_path / "loud.pcap"
    with capture.open("wb") as fileobj:
        writer = PcapWriter(fileobj)
        writer.write_header()
        for port in (LEFT_PORT, RIGHT_PORT):
            for p in stream_packets(frames(loud, "PCMU"), t0=T0):
                writer.write_packet(p.arrival, CALLER, (RECORDER, port), to_rtp(p))
    output = tmp_path / "mix.wav"
    render_stereo_wav(
        capture,
        [ChannelSpec([LEFT, StreamSelector(RIGHT_PORT, "PCMU", 0)])],
        output,
    )
    _, pcm = read_wav(output)
    assert pcm.max() == 32767 and pcm.min() == -32768
    decoded = decode_ulaw(b"".join(frames(loud, "PCMU")))
    # Same sign as the source everywhere: no wrap-around.
    assert np.all(np.sign(pcm[:, 0]) == np.sign(decoded))


def test_explicit_window(capture: Path, tmp_path: Path) -> None:
    output = tmp_path / "part.wav"
    result = render_stereo_wav(
        capture, [ChannelSpec([LEFT]), ChannelSpec([RIGHT])], output, start=T0 + 1, end=T0 + 3
    )
    assert result.samples == 16000 and result.duration_s == 2.0
    _, pcm = read_wav(output)
    expected_left = decode_ulaw(b"".join(frames(left_audio(), "PCMU")))
    assert np.array_equal(pcm[: at(1.0), 0], expected_left[at(1.0) : at(2.0)])


def test_srtp_stream_is_decrypted_with_its_key(tmp_path: Path) -> None:
    capture = tmp_path / "srtp.pcap"
    write_capture(capture, srtp_left=True)
    left = dataclasses.replace(LEFT, srtp=("AES_CM_128_HMAC_SHA1_80", KEY))
    output = tmp_path / "srtp.wav"
    result = render_stereo_wav(capture, [ChannelSpec([left]), ChannelSpec([RIGHT])], output)
    _, pcm = read_wav(output)
    assert peak_frequency(pcm[at(3.0) : at(9.0), 0]) == pytest.approx(440, abs=2)
    # The duplicate fails libsrtp's replay check, so it counts as undecodable here.
    assert result.channel_stats[0].packets_used == 475


def test_no_packets_gives_an_empty_file(tmp_path: Path) -> None:
    capture = tmp_path / "empty.pcap"
    with capture.open("wb") as fileobj:
        PcapWriter(fileobj).write_header()
    output = tmp_path / "empty.wav"
    result = render_stereo_wav(capture, [ChannelSpec([LEFT]), ChannelSpec([RIGHT])], output)
    assert result.samples == 0
    assert read_wav(output)[0] == 2


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (StreamSelector(LEFT_PORT, "opus", 111, 48000), "codec 'opus' cannot be decoded yet"),
        (StreamSelector(LEFT_PORT, "PCMU", 0, 16000), "PCMU at 16000 Hz is not supported"),
    ],
)
def test_unsupported_codecs_fail_before_reading(
    selector: StreamSelector, message: str, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedCodec, match=message):
        render_stereo_wav(tmp_path / "missing.pcap", [ChannelSpec([selector])], tmp_path / "x.wav")


def test_channel_count_is_one_or_two(capture: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="takes one or two channels, got 3"):
        render_stereo_wav(capture, [ChannelSpec([LEFT])] * 3, tmp_path / "x.wav")


def test_selectors_are_hashable_values() -> None:
    a = StreamSelector(1, "PCMU", 0, paused=[(1.0, None)])
    assert a == StreamSelector(1, "PCMU", 0, paused=((1.0, None),))
    assert hash(a) == hash(StreamSelector(1, "PCMU", 0, paused=((1.0, None),)))
    assert ChannelSpec([a]).streams == (a,)
