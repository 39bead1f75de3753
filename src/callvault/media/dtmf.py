"""DTMF digits and other telephone events from RFC 4733 packets.

``TelephoneEvent`` is one payload (event code, end bit, volume, duration so far).
``collect_dtmf`` turns the packets of a stream into ``DtmfEvent``s: every packet of one
event carries the same RTP timestamp (the event's start) and a growing duration, the
last one has the end bit and is usually sent three times. Packets are grouped by
(SSRC, timestamp, event), so duplicates and retransmitted ends merge, a lost end packet
still gives an event (as long as the packets seen say), a new timestamp starts a new
event, interleaved sources stay apart and a timestamp wrap changes nothing. An event
starts at the arrival of its first packet minus the duration that packet reports:
the sender sends a packet once that much of the tone has played.

Not handled: long events split into segments (RFC 4733 section 2.5.2.3; a digit over
8 s at 8 kHz) come out as one event per segment, and RFC 2198 redundant payloads are
malformed here. No I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from callvault.media.timeline import StreamPacket

__all__ = [
    "DTMF_DIGITS",
    "DtmfEvent",
    "DtmfEvents",
    "TelephoneEvent",
    "TelephoneEventError",
    "collect_dtmf",
    "event_name",
]

#: Event codes 0-15 (RFC 4733 section 3.2) as the keypad writes them.
DTMF_DIGITS = "0123456789*#ABCD"
FLASH = 16
_FORMAT = struct.Struct("!BBH")


class TelephoneEventError(ValueError):
    """A telephone-event payload is not 4 bytes."""


def event_name(event: int) -> str:
    """``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``, ``"flash"``; ``""`` otherwise."""
    if event < len(DTMF_DIGITS):
        return DTMF_DIGITS[event]
    return "flash" if event == FLASH else ""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 payload: ``duration`` is in RTP clock units since the event began."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) != 4:
            raise TelephoneEventError(f"telephone-event payload is {len(payload)} bytes, not 4")
        event, flags, duration = _FORMAT.unpack(payload)
        # The R bit (0x40) is reserved: ignored on receipt.
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return _FORMAT.pack(self.event, self.end << 7 | self.volume & 0x3F, self.duration)

    def __repr__(self) -> str:
        end = " end" if self.end else ""
        return f"<TelephoneEvent {self.event}{end} -{self.volume} dBm0 {self.duration}>"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One key press (or other event): wall-clock start (epoch seconds) and duration.

    ``digit`` is the key for events 0-15, ``"flash"`` for 16 and ``""`` for other
    events, which keep their code in ``event``. ``volume`` is in -dBm0 (0 is loudest).
    """

    digit: str
    event: int
    start: float
    duration: float
    volume: int


class DtmfEvents(list[DtmfEvent]):
    """The events of a stream in start order; ``malformed`` counts payloads skipped."""

    def __init__(self, events: Iterable[DtmfEvent] = (), malformed: int = 0) -> None:
        super().__init__(events)
        self.malformed = malformed


class _Tracker:
    __slots__ = ("arrival", "duration", "event", "start", "volume")

    def __init__(self, event: TelephoneEvent, arrival: float, clock_rate: int) -> None:
        self.event = event.event
        self.arrival = arrival
        self.start = arrival - event.duration / clock_rate
        self.duration = event.duration
        self.volume = event.volume


def collect_dtmf(
    packets: Iterable[StreamPacket], *, payload_type: int, clock_rate: int
) -> DtmfEvents:
    """The telephone events in ``packets`` (other payload types are ignored).

    Returns a list (``DtmfEvents``) sorted by start, whose ``malformed`` attribute
    counts the payloads of ``payload_type`` that were not valid telephone events.
    """
    trackers: dict[tuple[int, int, int], _Tracker] = {}
    malformed = 0
    for packet in packets:
        if packet.payload_type != payload_type:
            continue
        try:
            event = TelephoneEvent.parse(packet.payload)
        except TelephoneEventError:
            malformed += 1
            continue
        key = (packet.ssrc, packet.timestamp, event.event)
        tracker = trackers.get(key)
        if tracker is None:
            trackers[key] = _Tracker(event, packet.arrival, clock_rate)
            continue
        if packet.arrival < tracker.arrival:  # packets given out of arrival order
            tracker.arrival = packet.arrival
            tracker.start = packet.arrival - event.duration / clock_rate
        if event.duration >= tracker.duration:
            tracker.duration = event.duration
            tracker.volume = event.volume
    events = [
        DtmfEvent(event_name(t.event), t.event, t.start, t.duration / clock_rate, t.volume)
        for t in trackers.values()
    ]
    events.sort(key=lambda e: e.start)
    return DtmfEvents(events, malformed)
