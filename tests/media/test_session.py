"""A synthesised two-party capture decoded stream by stream, as finalize does it."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pylibsrtp import Policy, Session

from callvault.media.g711 import decode_alaw, decode_ulaw
from callvault.media.session import (
    DecodedStream,
    PayloadFormat,
    StreamSource,
    decode_stream,
    mix,
    read_capture,
    resample,
    stream_rate,
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
PCMU = PayloadFormat("PCMU", 8000)
PCMA = PayloadFormat("PCMA", 8000)
EVENTS = PayloadFormat("telephone-event", 8000)
LEFT = StreamSource(1, LEFT_PORT, {0: PCMU, 101: EVENTS})
RIGHT_PAUSE = (T0 + 5.0, T0 + 6.0)
RIGHT = StreamSource(2, RIGHT_PORT, {8: PCMA}, paused=(RIGHT_PAUSE,))
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
    # A DTMF "1" (end bit, 160 ticks) takes the sequence number of the last lost packet.
    out.append(StreamPacket(T0 + 2.48, 1124, 50_000 + 160 * 124, 0x1111, 101, b"\x01\x8a\x00\xa0"))
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


def at(seconds: float) -> int:
    return round(seconds * RATE)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "session.pcap"
    write_capture(path)
    return path


def _decode(capture: Path, source: StreamSource, end: float = T0 + 10.3) -> DecodedStream:
    streams = read_capture(capture, {LEFT_PORT, RIGHT_PORT})
    return decode_stream(
        source, streams.packets[source.local_port], sample_rate=RATE, start=T0, end=end
    )


def test_read_capture_keeps_rtp_of_the_wanted_ports(capture: Path) -> None:
    streams = read_capture(capture, {LEFT_PORT, RIGHT_PORT})
    assert len(streams.packets[LEFT_PORT]) == len(left_packets())
    assert len(streams.packets[RIGHT_PORT]) == len(right_packets())
    assert (streams.rtcp, streams.not_rtp) == (1, 1)  # the rtcp-mux report, the garbage
    arrivals = [p.arrival for p in streams.packets[LEFT_PORT]]
    assert arrivals == sorted(arrivals)


def test_each_party_decoded_in_its_place(capture: Path) -> None:
    left, right = _decode(capture, LEFT), _decode(capture, RIGHT)
    assert len(left.pcm) == len(right.pcm) == at(10.3)

    assert peak_frequency(left.pcm[at(3.0) : at(9.0)]) == pytest.approx(440, abs=2)
    assert peak_frequency(right.pcm[at(6.5) : at(10.0)]) == pytest.approx(1000, abs=2)
    # Where packets arrived the samples are exactly the decoded ones, in their place.
    expected_left = decode_ulaw(b"".join(frames(left_audio(), "PCMU")))
    assert np.array_equal(left.pcm[: at(2.0)], expected_left[: at(2.0)])
    assert np.array_equal(left.pcm[at(2.5) : at(10.0)], expected_left[at(2.5) :])
    expected_right = decode_alaw(b"".join(frames(right_audio(), "PCMA")))
    assert np.array_equal(right.pcm[at(0.3) : at(5.0)], expected_right[: at(4.7)])

    # Lost packets: 60 ms concealed from what came before, then silence.
    assert rms(left.pcm[at(2.0) : at(2.01)]) > 1000
    assert rms(left.pcm[at(2.061) : at(2.5)]) == 0
    assert rms(left.pcm[at(10.0) :]) == 0  # the left party had finished
    assert rms(right.pcm[: at(0.3)]) == 0  # the right party started later
    assert rms(right.pcm[at(5.0) : at(6.0)]) == 0  # paused
    assert left.seconds_covered == pytest.approx(9.5, abs=0.01)
    assert right.seconds_covered == pytest.approx(9.0, abs=0.01)
    assert (left.packets, left.used, left.skipped) == (len(left_packets()), 475, 1)


def test_telephone_events_become_dtmf_marks(capture: Path) -> None:
    left = _decode(capture, LEFT)
    (event,) = left.dtmf
    assert event.digit == "1"
    assert event.start == pytest.approx(T0 + 2.48 - 0.02, abs=1e-6)
    assert event.duration == pytest.approx(0.02)


def test_a_codec_change_mid_stream_is_decoded_by_payload_type(tmp_path: Path) -> None:
    audio = tone(440, 4.0)
    packets = stream_packets(frames(audio[: at(2.0)], "PCMU"), t0=T0)
    packets += stream_packets(
        frames(audio[at(2.0) :], "PCMA"),
        t0=T0 + 2.0,
        seq0=1100,
        ts0=50_000 + at(2.0),
        payload_type=8,
    )
    capture = tmp_path / "switch.pcap"
    with capture.open("wb") as fileobj:
        writer = PcapWriter(fileobj)
        writer.write_header()
        for p in packets:
            writer.write_packet(p.arrival, CALLER, (RECORDER, LEFT_PORT), to_rtp(p))
    source = StreamSource(1, LEFT_PORT, {0: PCMU, 8: PCMA})
    decoded = _decode(capture, source, end=T0 + 4.0)
    assert decoded.used == 200 and decoded.unsupported == {}
    assert peak_frequency(decoded.pcm[at(0.5) : at(1.5)]) == pytest.approx(440, abs=2)
    assert peak_frequency(decoded.pcm[at(2.5) : at(3.5)]) == pytest.approx(440, abs=2)
    assert decoded.seconds_covered == pytest.approx(4.0)


def test_packets_of_a_codec_that_cannot_be_decoded_are_counted(capture: Path) -> None:
    source = StreamSource(1, LEFT_PORT, {0: PayloadFormat("G726-32", 8000), 101: EVENTS})
    decoded = _decode(capture, source)
    assert decoded.unsupported == {"G726-32": 475 + 1}  # the duplicate is a packet too
    assert decoded.used == 0 and rms(decoded.pcm) == 0


def test_stream_rate_is_the_highest_audio_rate() -> None:
    assert stream_rate(LEFT) == 8000
    wide = StreamSource(3, 1, {0: PCMU, 9: PayloadFormat("G722", 8000)})
    assert stream_rate(wide) == 16000
    assert stream_rate(StreamSource(4, 1, {101: EVENTS})) == 8000


def test_mix_sums_and_clips_instead_of_wrapping() -> None:
    loud = decode_ulaw(b"".join(frames(tone(440, 1.0, amplitude=30000), "PCMU")))
    mixed = mix([loud, loud], len(loud))
    assert mixed.max() == 32767 and mixed.min() == -32768
    assert np.all(np.sign(mixed) == np.sign(loud))  # same sign everywhere: no wrap-around
    assert len(mix([], 80)) == 80 and not mix([], 80).any()
    assert np.array_equal(mix([loud[:100]], 160)[:100], loud[:100])


def test_resample_keeps_time_and_pitch() -> None:
    pcm = tone(440, 2.0)
    wide = resample(pcm, 8000, 16000)
    assert len(wide) == 32000
    assert peak_frequency(wide[::2]) == pytest.approx(440, abs=2)
    click = np.zeros(8000, np.int16)
    click[4000] = 20000
    assert int(np.argmax(np.abs(resample(click, 8000, 16000)))) == 8000  # no delay added
