"""RTP packets (RFC 3550 section 5.1) and RTP/RTCP demultiplexing (RFC 5761 section 4).

Two ways in:

* ``peek_rtp`` is the receive hot path: one ``struct.unpack_from`` on the 12-byte fixed
  header, no object built, ``None`` for anything that is not an RTP packet. The recorder
  appends every datagram to its capture as received, so it only needs the numbers that
  feed the stream statistics.
* ``parse_rtp_header`` checks the whole header (CSRC list, header extension, padding)
  and says where the payload lies without copying it; ``parse_rtp`` /
  ``RtpPacket.parse`` also split the payload off. They are for offline work (rendering
  a capture) and tests. A bad packet raises ``RtpError`` with an exact message.

``bytes(packet)`` builds a packet again, for tests and for the benchmark sender.
No I/O here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_SIZE",
    "RtpError",
    "RtpHeader",
    "RtpHeaderExtension",
    "RtpPacket",
    "is_rtcp",
    "parse_rtp",
    "parse_rtp_header",
    "peek_rtp",
]

RTP_HEADER_SIZE = 12
_FIXED = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")
_MAX_CSRC = 15

# RFC 5761 section 4: with RTP and RTCP on one port, a second octet of 192..223 is an
# RTCP packet type (SR 200, RR 201, ... up to the reserved 223); RTP must not use
# payload types 64..95 with the marker bit set there, so the two never collide.
_RTCP_FIRST = 192
_RTCP_LAST = 223


class RtpError(ValueError):
    """A datagram is not a well-formed RTP packet; the message says why."""


@dataclass(frozen=True, slots=True)
class RtpHeaderExtension:
    """The one header extension RFC 3550 5.3.1 allows: a 16-bit profile and its data.

    ``data`` is a whole number of 32-bit words (RFC 8285 one- and two-byte elements are
    left packed: nothing in the recorder reads them yet).
    """

    profile: int
    data: bytes

    def __repr__(self) -> str:
        return f"<RtpHeaderExtension profile=0x{self.profile:04x} {len(self.data)} bytes>"


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """A checked RTP header; the payload is ``data[payload_offset:][:payload_length]``."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool
    csrc: tuple[int, ...]
    extension: RtpHeaderExtension | None
    padding_size: int
    payload_offset: int
    payload_length: int

    @classmethod
    def parse(cls, data: bytes) -> RtpHeader:
        """Parse one RTP packet's header; raise ``RtpError`` if it is not one."""
        return parse_rtp_header(data)


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet with its payload split off (padding removed)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpHeaderExtension | None = None
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raise ``RtpError`` if it is not one."""
        return parse_rtp(data)

    def __bytes__(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"RTP payload type {self.payload_type} is not in 0..127")
        if len(self.csrc) > _MAX_CSRC:
            raise RtpError(f"RTP CSRC list has {len(self.csrc)} entries, at most 15 fit")
        if not 0 <= self.padding_size <= 255:
            raise RtpError(f"RTP padding size {self.padding_size} is not in 0..255")
        first = 0x80 | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        parts = [
            _FIXED.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        parts.extend(struct.pack("!I", c) for c in self.csrc)
        if self.extension is not None:
            data = self.extension.data
            if len(data) % 4:
                raise RtpError(
                    f"RTP header extension data is {len(data)} bytes, not a multiple of 4"
                )
            parts.append(_EXTENSION.pack(self.extension.profile, len(data) // 4))
            parts.append(data)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)

    def __repr__(self) -> str:
        marker = " M" if self.marker else ""
        return (
            f"<RtpPacket pt={self.payload_type} seq={self.sequence_number} "
            f"ts={self.timestamp} ssrc=0x{self.ssrc:08x}{marker} {len(self.payload)} bytes>"
        )


def peek_rtp(data: bytes) -> tuple[int, int, int, int] | None:
    """``(payload_type, sequence_number, timestamp, ssrc)`` of an RTP packet, else None.

    Checks only what the fixed header can tell (length, version 2, not in the RTCP
    range): cheap enough for every received datagram.
    """
    if len(data) < RTP_HEADER_SIZE:
        return None
    first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
    if first & 0xC0 != 0x80 or _RTCP_FIRST <= second <= _RTCP_LAST:
        return None
    return second & 0x7F, seq, ts, ssrc


def is_rtcp(data: bytes) -> bool:
    """True for a datagram that RFC 5761 demultiplexing sends to RTCP."""
    return len(data) >= 4 and data[0] & 0xC0 == 0x80 and _RTCP_FIRST <= data[1] <= _RTCP_LAST


def parse_rtp_header(data: bytes) -> RtpHeader:
    """Parse and check one RTP packet's header; raise ``RtpError`` with the exact fault."""
    return RtpHeader(*_parse(data))


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse and check one RTP packet and split off its payload; raise ``RtpError``."""
    pt, seq, ts, ssrc, marker, csrc, extension, padding, offset, length = _parse(data)
    payload = bytes(data[offset : offset + length])
    return RtpPacket(pt, seq, ts, ssrc, payload, marker, csrc, extension, padding)


_Fields = tuple[int, int, int, int, bool, tuple[int, ...], RtpHeaderExtension | None, int, int, int]


def _parse(data: bytes) -> _Fields:
    """The fields of ``RtpHeader`` in order (one parser for both public entry points)."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet too short: {size} bytes, need at least 12")
    first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
    version = first >> 6
    if version != 2:
        raise RtpError(f"RTP version must be 2, got {version}")
    if _RTCP_FIRST <= second <= _RTCP_LAST:
        raise RtpError(f"packet type {second} is RTCP, not RTP (RFC 5761)")
    offset = RTP_HEADER_SIZE
    csrc_count = first & 0x0F
    csrc: tuple[int, ...] = ()
    if csrc_count:
        end = offset + 4 * csrc_count
        if end > size:
            raise RtpError(
                f"RTP packet truncated: {csrc_count} CSRC entries need {end} bytes, have {size}"
            )
        csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset = end
    extension = None
    if first & 0x10:
        if offset + 4 > size:
            raise RtpError(
                f"RTP packet truncated: header extension needs {offset + 4} bytes, have {size}"
            )
        profile, words = _EXTENSION.unpack_from(data, offset)
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpError(
                f"RTP packet truncated: header extension of {words} words needs {end} bytes, "
                f"have {size}"
            )
        extension = RtpHeaderExtension(profile, bytes(data[offset + 4 : end]))
        offset = end
    padding = 0
    if first & 0x20:
        padding = data[-1] if size > offset else 0
        if padding == 0 or padding > size - offset:
            raise RtpError(
                f"RTP padding length {padding} is invalid with {size - offset} bytes "
                f"after the header"
            )
    return (
        second & 0x7F,
        seq,
        ts,
        ssrc,
        bool(second & 0x80),
        csrc,
        extension,
        padding,
        offset,
        size - padding - offset,
    )
