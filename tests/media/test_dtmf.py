"""RFC 4733 telephone events: payloads, and key presses collected from a stream."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.media.dtmf import (
    DtmfEvent,
    TelephoneEvent,
    TelephoneEventError,
    collect_dtmf,
    event_name,
)
from callvault.media.timeline import StreamPacket
from tests.media.payloads import dtmf_packets, telephone_event

T0 = 1_700_000_000.0
PT = 101


def digits(events: list[DtmfEvent]) -> str:
    return "".join(e.digit for e in events)


# --- one payload -----------------------------------------------------------------------


def test_parse_a_known_payload() -> None:
    # Digit 5, end bit, volume 10, 800 ticks (100 ms at 8 kHz); the R bit set.
    event = TelephoneEvent.parse(bytes([5, 0x80 | 0x40 | 10, 0x03, 0x20]))
    assert event == TelephoneEvent(5, True, 10, 800)
    assert bytes(event) == bytes([5, 0x80 | 10, 0x03, 0x20])  # R is sent as zero
    assert repr(event) == "<TelephoneEvent 5 end -10 dBm0 800>"


@pytest.mark.parametrize("size", [0, 1, 3, 5, 8])
def test_wrong_length_is_an_exact_error(size: int) -> None:
    with pytest.raises(TelephoneEventError) as error:
        TelephoneEvent.parse(bytes(size))
    assert str(error.value) == f"telephone-event payload is {size} bytes, not 4"


@given(
    st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF)
)  # fmt: skip
def test_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    value = TelephoneEvent(event, end, volume, duration)
    assert TelephoneEvent.parse(bytes(value)) == value
    assert bytes(value) == telephone_event(event, end=end, volume=volume, duration=duration)


@given(st.binary(max_size=8))
def test_parse_raises_only_its_error(data: bytes) -> None:
    try:
        event = TelephoneEvent.parse(data)
    except TelephoneEventError:
        assert len(data) != 4
    else:
        assert bytes(event)[0] == data[0] and bytes(event)[2:] == data[2:]


def test_event_names() -> None:
    assert [event_name(n) for n in range(17)] == [*"0123456789*#ABCD", "flash"]
    assert event_name(200) == ""


# --- collecting events -----------------------------------------------------------------


def test_a_digit_sequence_with_repeated_end_packets() -> None:
    packets = dtmf_packets("123*#ABCD0", t0=T0)
    assert sum(TelephoneEvent.parse(p.payload).end for p in packets) == 30
    events = collect_dtmf(packets, payload_type=PT, clock_rate=8000)
    assert digits(events) == "123*#ABCD0"
    assert [e.event for e in events] == [1, 2, 3, 10, 11, 12, 13, 14, 15, 0]
    for k, event in enumerate(events):
        assert event.start == pytest.approx(T0 + 0.2 * k, abs=1e-9)
        assert event.duration == pytest.approx(0.1)
        assert event.volume == 10
    assert events.malformed == 0


def test_a_lost_end_packet_still_gives_the_event() -> None:
    packets = dtmf_packets("47", t0=T0)
    kept = [p for p in packets if not (TelephoneEvent.parse(p.payload).end and p.payload[0] == 4)]
    events = collect_dtmf(kept, payload_type=PT, clock_rate=8000)
    assert digits(events) == "47"
    assert events[0].duration == pytest.approx(0.08)  # as far as the packets seen say
    assert events[1].duration == pytest.approx(0.1)


def test_lost_first_packets_do_not_move_the_start() -> None:
    packets = dtmf_packets("9", t0=T0)[2:]  # the first two (20 and 40 ms) lost
    (event,) = collect_dtmf(packets, payload_type=PT, clock_rate=8000)
    assert event.start == pytest.approx(T0, abs=1e-9)
    assert event.duration == pytest.approx(0.1)


def test_duplicates_and_reordering_change_nothing() -> None:
    packets = dtmf_packets("2580", t0=T0)
    shuffled = packets + random.Random(4).sample(packets, 10)
    random.Random(5).shuffle(shuffled)
    expected = collect_dtmf(packets, payload_type=PT, clock_rate=8000)
    assert collect_dtmf(shuffled, payload_type=PT, clock_rate=8000) == expected


def test_the_same_key_twice_is_two_events() -> None:
    events = collect_dtmf(dtmf_packets("55", t0=T0), payload_type=PT, clock_rate=8000)
    assert digits(events) == "55"
    assert events[1].start - events[0].start == pytest.approx(0.2)


def test_overlapping_sources_stay_apart() -> None:
    # A second SSRC (after an SBC re-anchor, say) sends other digits at the same time
    # and with the same timestamps: each source's events stay its own.
    first = dtmf_packets("12", t0=T0, ssrc=1)
    second = dtmf_packets("34", t0=T0 + 0.05, ssrc=2, seq0=7000)
    merged = sorted(first + second, key=lambda p: p.arrival)
    events = collect_dtmf(merged, payload_type=PT, clock_rate=8000)
    assert digits(events) == "1324"
    assert [round(e.start - T0, 3) for e in events] == [0.0, 0.05, 0.2, 0.25]


def test_timestamp_wrap_around() -> None:
    # The second digit's timestamp wraps past 2**32.
    packets = dtmf_packets("#*1", t0=T0, ts0=2**32 - 2000)
    assert packets[0].timestamp > packets[-1].timestamp
    events = collect_dtmf(packets, payload_type=PT, clock_rate=8000)
    assert digits(events) == "#*1"
    assert [round(e.start - T0, 3) for e in events] == [0.0, 0.2, 0.4]


def test_other_payload_types_are_ignored_and_malformed_ones_counted() -> None:
    packets = dtmf_packets("6", t0=T0)
    noise = [
        StreamPacket(T0 + 0.01, 1, 5, packets[0].ssrc, 0, b"\xff" * 160),  # audio
        StreamPacket(T0 + 0.02, 2, 5, packets[0].ssrc, PT, b"\x06\x0a"),  # cut short
        StreamPacket(T0 + 0.03, 3, 5, packets[0].ssrc, PT, b"\x06\x0a\x00\xa0\x00"),
    ]
    events = collect_dtmf(packets + noise, payload_type=PT, clock_rate=8000)
    assert digits(events) == "6"
    assert events.malformed == 2
    assert isinstance(events, list) and events == [events[0]]


def test_non_dtmf_events_keep_their_number() -> None:
    flash = telephone_event(16, end=True, volume=0, duration=4000)
    other = telephone_event(200, end=False, volume=30, duration=1600)
    packets = [
        StreamPacket(T0 + 1.0, 1, 8000, 9, PT, flash),
        StreamPacket(T0 + 2.0, 2, 16000, 9, PT, other),
    ]
    events = collect_dtmf(packets, payload_type=PT, clock_rate=16000)
    assert events == [
        DtmfEvent("flash", 16, T0 + 1.0 - 0.25, 0.25, 0),
        DtmfEvent("", 200, T0 + 2.0 - 0.1, 0.1, 30),
    ]


def test_wideband_clock() -> None:
    packets = dtmf_packets("3", t0=T0, clock_rate=48000)
    (event,) = collect_dtmf(packets, payload_type=PT, clock_rate=48000)
    assert event.start == pytest.approx(T0, abs=1e-9)
    assert event.duration == pytest.approx(0.1)


def test_volume_follows_the_longest_packet() -> None:
    packets = dtmf_packets("8", t0=T0, volume=20)
    last = packets[-1]
    louder = dataclasses.replace(last, payload=last.payload[:1] + b"\x85" + last.payload[2:])
    (event,) = collect_dtmf([*packets[:-1], louder], payload_type=PT, clock_rate=8000)
    assert event.volume == 5
