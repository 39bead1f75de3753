"""Rendering placed runs (``chunks``, through ``timeline.render_stream``): decoders,
codec switches, sample rates, overlapping sources, windows and memory."""

from __future__ import annotations

import dataclasses
import random
import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest

from callvault.media.decoders import UndecodablePayload
from callvault.media.g711 import UlawDecoder, decode_alaw, decode_ulaw
from callvault.media.timeline import StreamPacket, place_stream, render_stream
from tests.media.synth import (
    FRAME,
    Linear16,
    Wide16,
    by_arrival,
    frames,
    network_packets,
    numbered,
    numbered_pcm,
    stream_packets,
    tone,
)

T0 = 1_700_000_000.0


def test_new_source_overlapping_the_old_one_is_mixed_not_overwritten() -> None:
    """A new SSRC starts 10 ms before the old one's last frame ends: both are heard."""
    old = stream_packets(numbered(25), t0=T0, ssrc=1)
    new = stream_packets([np.full(FRAME, 1000, ">i2").tobytes()] * 25, t0=T0 + 0.49, ssrc=2)
    placement = place_stream(by_arrival(old + new), clock_rates={0: 8000})
    out = render_stream(placement, {0: Linear16}, sample_rate=8000, start=T0, end=T0 + 0.99)
    want = np.zeros(round(0.99 * 8000), dtype=np.int16)
    want[:4000] = numbered_pcm(25)
    want[3920:] += 1000
    assert np.array_equal(out.pcm, want)
    assert out.covered == ((0, 7920),)


def test_overlapping_loud_sources_clip_instead_of_wrapping() -> None:
    loud = [np.full(FRAME, 30000, ">i2").tobytes()] * 10
    first = stream_packets(loud, t0=T0, ssrc=1)
    second = stream_packets(loud, t0=T0 + 0.1, ssrc=2)
    placement = place_stream(by_arrival(first + second), clock_rates={0: 8000})
    out = render_stream(placement, {0: Linear16}, sample_rate=8000, start=T0, end=T0 + 0.3)
    assert set(out.pcm[800:1600].tolist()) == {32767}
    assert set(out.pcm[:800].tolist()) == set(out.pcm[1600:].tolist()) == {30000}


def test_codec_switch_mid_stream_decodes_each_packet_by_its_type() -> None:
    """A re-INVITE switched PCMU to PCMA; timestamps and sequence numbers run on."""
    audio = tone(440, 1.0)
    ulaw, alaw = frames(audio[:4000], "PCMU"), frames(audio[4000:], "PCMA")
    packets = stream_packets(ulaw + alaw, t0=T0)
    packets[25:] = [dataclasses.replace(p, payload_type=8) for p in packets[25:]]
    placement = place_stream(packets, clock_rates={0: 8000, 8: 8000})
    assert len(placement.runs) == 1
    out = render_stream(
        placement,
        {0: UlawDecoder, 8: lambda: AlawLike()},
        sample_rate=8000,
        start=T0,
        end=T0 + 1,
    )
    want = np.concatenate((decode_ulaw(b"".join(ulaw)), decode_alaw(b"".join(alaw))))
    assert np.array_equal(out.pcm, want)
    assert [run.payload_types for run in out.runs] == [(0, 8)]


class AlawLike:
    """A-law through the one-payload-at-a-time path (no joined decoding)."""

    sample_rate = 8000

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return decode_alaw(payload)


def wideband_switch() -> list[StreamPacket]:
    """25 frames of an 8 kHz codec, then 25 of a 16 kHz one on the same 8000 Hz clock."""
    packets = stream_packets(numbered(25) + numbered(50, 25, per_frame=2 * FRAME), t0=T0)
    packets[25:] = [dataclasses.replace(p, payload_type=9) for p in packets[25:]]
    return packets


def test_wideband_codec_switch_rendered_at_16_khz() -> None:
    placement = place_stream(wideband_switch(), clock_rates={0: 8000, 9: 8000})
    out = render_stream(
        placement, {0: Linear16, 9: Wide16}, sample_rate=16000, start=T0, end=T0 + 1
    )
    assert len(out.pcm) == 16000 and out.covered == ((0, 16000),)
    # The 8 kHz part is interpolated: each frame's value, the last sample halfway on.
    narrow = out.pcm[:8000].reshape(25, 320)
    assert np.array_equal(narrow[:, :319], np.repeat(np.arange(1, 26)[:, None], 319, axis=1))
    assert np.array_equal(out.pcm[8000:], np.repeat(np.arange(26, 51), 320))


def test_wideband_codec_switch_rendered_at_8_khz() -> None:
    placement = place_stream(wideband_switch(), clock_rates={0: 8000, 9: 8000})
    out = render_stream(placement, {0: Linear16, 9: Wide16}, sample_rate=8000, start=T0, end=T0 + 1)
    assert np.array_equal(out.pcm, numbered_pcm(50))  # the 16 kHz part: means of pairs


@pytest.mark.parametrize("rate", [8000, 12000, 16000, 48000])
def test_any_output_rate_keeps_frames_in_place(rate: int) -> None:
    placement = place_stream(stream_packets(numbered(50), t0=T0), clock_rates={0: 8000})
    out = render_stream(placement, {0: Linear16}, sample_rate=rate, start=T0, end=T0 + 1)
    per_frame = rate // 50
    assert len(out.pcm) == rate
    inside = out.pcm.reshape(50, per_frame)[:, : per_frame - rate // 8000]
    assert np.array_equal(inside, np.repeat(np.arange(1, 51)[:, None], inside.shape[1], axis=1))


class Journal:
    """A stateful test decoder: notes which instance decoded which frame."""

    sample_rate = 8000
    log: list[tuple[int, int]] = []
    made = 0

    def __init__(self) -> None:
        Journal.made += 1
        self.serial = Journal.made

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        value = int(np.frombuffer(payload, dtype=">i2")[0])
        self.log.append((self.serial, value))
        return np.full(FRAME, value, dtype=np.int16)


def test_one_fresh_stateful_decoder_per_run_and_payload_type_in_timestamp_order() -> None:
    first = stream_packets(numbered(20), t0=T0, ssrc=1)
    second = stream_packets(numbered(40, 20), t0=T0 + 0.4, ssrc=2)
    second[10:] = [dataclasses.replace(p, payload_type=8) for p in second[10:]]
    rng = random.Random(5)
    arrived = by_arrival(
        [dataclasses.replace(p, arrival=p.arrival + rng.uniform(0, 0.08)) for p in first + second]
    )
    placement = place_stream(arrived, clock_rates={0: 8000, 8: 8000})
    Journal.log = []
    out = render_stream(placement, {0: Journal, 8: Journal}, sample_rate=8000, start=T0, end=T0 + 1)
    decoded: dict[int, list[int]] = {}
    for instance, frame in Journal.log:
        decoded.setdefault(instance, []).append(frame)
    assert sorted(decoded.values()) == [
        list(range(1, 21)), list(range(21, 31)), list(range(31, 41))
    ]  # fmt: skip
    assert [run.payload_types for run in out.runs] == [(0,), (0, 8)]


class Bytewise:
    """Stateless, one sample per byte (joined payloads decode in one call); a payload
    holding 0xFF is undecodable."""

    sample_rate = 8000
    samples_per_byte = 1

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        if b"\xff" in payload:
            raise UndecodablePayload("bad frame")
        return np.frombuffer(payload, dtype=np.uint8).astype(np.int16)


def test_undecodable_payloads_are_counted_and_left_silent() -> None:
    payloads = [bytes([i + 1]) * FRAME for i in range(50)]
    payloads[10] = payloads[30] = b"\xff" * FRAME
    placement = place_stream(stream_packets(payloads, t0=T0), clock_rates={0: 8000})
    out = render_stream(placement, {0: Bytewise}, sample_rate=8000, start=T0, end=T0 + 1)
    assert (out.undecodable, out.packets_used) == (2, 48)
    assert np.array_equal(out.pcm, numbered_pcm(50, {10, 30}))
    assert out.covered == ((0, 1600), (1760, 4800), (4960, 8000))


def test_a_payload_type_without_decoder_is_a_caller_error() -> None:
    placement = place_stream(stream_packets(numbered(5), t0=T0), clock_rates={0: 8000})
    with pytest.raises(KeyError, match="no decoder for payload type 0"):
        render_stream(placement, {8: Linear16}, sample_rate=8000, start=T0, end=T0 + 1)


class Counting(Linear16):
    decoded = 0

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        Counting.decoded += 1
        return super().decode(payload)


def test_a_window_decodes_only_the_frames_near_it() -> None:
    packets = stream_packets(numbered(30_000), t0=T0)  # ten minutes
    placement = place_stream(packets, clock_rates={0: 8000})
    Counting.decoded = 0
    out = render_stream(placement, {0: Counting}, sample_rate=8000, start=T0 + 300, end=T0 + 301)
    assert np.array_equal(out.pcm, np.repeat(np.arange(15_001, 15_051), FRAME).astype(np.int16))
    assert out.packets_used == 50
    assert Counting.decoded <= 50 + 2 * 2 * 50  # and a second or two around it


def test_rendering_works_in_the_output_plus_one_batch() -> None:
    """Twenty minutes of G.711: the output is 19.2 MB; rendering needs little more."""
    payloads = frames(tone(440, 1.0)) * 1200
    packets, _ = network_packets(payloads, t0=T0, rng=np.random.default_rng(6), jitter=0.03,
                                 loss=0.01)  # fmt: skip
    placement = place_stream(packets, clock_rates={0: 8000})
    tracemalloc.start()
    try:
        out = render_stream(placement, {0: UlawDecoder}, sample_rate=8000, start=T0, end=T0 + 1200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.pcm.nbytes == 19_200_000
    assert peak < out.pcm.nbytes + 8_000_000
