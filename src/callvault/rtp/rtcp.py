"""Compound RTCP packets (RFC 3550 section 6): what a recorder keeps from them.

``parse_rtcp`` splits a compound packet and returns sender reports (their NTP/RTP
timestamp pairs let finalize align streams from different senders), receiver reports,
source descriptions (CNAME) and BYE. APP packets and the feedback / XR types a recorder
does not use (RFC 4585, 3611, ...) are skipped after their length is checked. A bad
packet raises ``RtcpError`` with an exact message. Each type has ``__bytes__`` so tests
and a future sender can build packets. No I/O here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "NTP_UNIX_OFFSET",
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "parse_rtcp",
]

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
SDES_CNAME = 1
#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SSRC = struct.Struct("!I")


class RtcpError(ValueError):
    """A datagram is not a well-formed (compound) RTCP packet; the message says why."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics for one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int  # signed 24-bit: duplicates can make it negative
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int

    def __bytes__(self) -> bytes:
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | (self.cumulative_lost & 0xFFFFFF),
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR: the sender's wall clock (64-bit NTP format) paired with an RTP timestamp."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    @property
    def ntp_seconds(self) -> float:
        """The NTP timestamp as seconds since 1900."""
        return self.ntp_timestamp / 2**32

    @property
    def unix_time(self) -> float:
        """The NTP timestamp as seconds since 1970 (the sender's clock, not ours)."""
        return self.ntp_seconds - NTP_UNIX_OFFSET

    def __bytes__(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        return _frame(SR, len(self.reports), body + b"".join(map(bytes, self.reports)))

    def __repr__(self) -> str:
        return (
            f"<SenderReport ssrc=0x{self.ssrc:08x} ntp={self.ntp_seconds:.6f} "
            f"rtp={self.rtp_timestamp} reports={len(self.reports)}>"
        )


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR: reception statistics from a participant that does not send."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = _SSRC.pack(self.ssrc) + b"".join(map(bytes, self.reports))
        return _frame(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items of one source: ``(item type, value)`` pairs in wire order."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", errors="replace")
        return None

    def __bytes__(self) -> bytes:
        out = bytearray(_SSRC.pack(self.ssrc))
        for kind, value in self.items:
            out += bytes((kind, len(value))) + value
        # A null item ends the list; pad with nulls to the next 32-bit boundary.
        out += bytes(4 - len(out) % 4)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES: CNAME and other descriptions, one chunk per source."""

    chunks: tuple[SdesChunk, ...] = ()

    def __bytes__(self) -> bytes:
        return _frame(SDES, len(self.chunks), b"".join(map(bytes, self.chunks)))


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE: the sources are leaving, with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: str | None = None

    def __bytes__(self) -> bytes:
        body = b"".join(_SSRC.pack(s) for s in self.sources)
        if self.reason is not None:
            text = self.reason.encode()
            if len(text) > 255:
                raise RtcpError(f"RTCP BYE reason is {len(text)} bytes, at most 255 fit")
            body += bytes((len(text),)) + text
            body += bytes(-len(body) % 4)
        return _frame(BYE, len(self.sources), body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye


def _frame(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise RtcpError(f"RTCP count {count} does not fit in 5 bits")
    return _HEADER.pack(0x80 | count, packet_type, len(body) // 4) + body


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP packet; skip APP and unknown types."""
    size = len(data)
    if size < 4:
        raise RtcpError(f"RTCP packet too short: {size} bytes, need at least 4")
    out: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if size - offset < 4:
            raise RtcpError(
                f"RTCP packet truncated: {size - offset} bytes left at offset {offset}, "
                f"need a 4-byte header"
            )
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        version = first >> 6
        if version != 2:
            raise RtcpError(f"RTCP version must be 2, got {version} at offset {offset}")
        length = 4 * (words + 1)
        if offset + length > size:
            raise RtcpError(
                f"RTCP packet type {packet_type} at offset {offset} declares {length} bytes, "
                f"only {size - offset} left"
            )
        end = offset + length
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > length - 4:
                raise RtcpError(
                    f"RTCP padding length {padding} is invalid in a {length}-byte packet"
                )
            end -= padding
        body = bytes(data[offset + 4 : end])
        count = first & 0x1F
        packet = _parse_one(packet_type, count, body)
        if packet is not None:
            out.append(packet)
        offset += length
    return out


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket | None:
    if packet_type == SR:
        need = 24 + 24 * count
        if len(body) < need:
            raise RtcpError(
                f"RTCP SR with {count} report blocks needs {need + 4} bytes, has {len(body) + 4}"
            )
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _report_blocks(body, 24, count))
    if packet_type == RR:
        need = 4 + 24 * count
        if len(body) < need:
            raise RtcpError(
                f"RTCP RR with {count} report blocks needs {need + 4} bytes, has {len(body) + 4}"
            )
        return ReceiverReport(_SSRC.unpack_from(body)[0], _report_blocks(body, 4, count))
    if packet_type == SDES:
        return SourceDescription(_sdes_chunks(body, count))
    if packet_type == BYE:
        return _bye(body, count)
    return None  # APP (204), feedback (205, 206), XR (207), ...: not needed to record


def _report_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for i in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(body, offset + 24 * i)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _sdes_chunks(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks = []
    offset = 0
    for index in range(count):
        if offset + 4 > len(body):
            raise RtcpError(f"RTCP SDES chunk {index + 1} of {count} is missing")
        ssrc = _SSRC.unpack_from(body, offset)[0]
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpError(f"RTCP SDES chunk {index + 1} has no end-of-list item")
            kind = body[offset]
            if kind == 0:
                # The null item and the padding after it end at a 32-bit boundary.
                offset = (offset + 4) & ~3
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError(f"RTCP SDES item type {kind} in chunk {index + 1} is truncated")
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


def _bye(body: bytes, count: int) -> Bye:
    need = 4 * count
    if len(body) < need:
        raise RtcpError(
            f"RTCP BYE with {count} sources needs {need + 4} bytes, has {len(body) + 4}"
        )
    sources = struct.unpack_from(f"!{count}I", body)
    reason = None
    if len(body) > need:
        length = body[need]
        if need + 1 + length > len(body):
            raise RtcpError(f"RTCP BYE reason of {length} bytes is truncated")
        reason = body[need + 1 : need + 1 + length].decode("utf-8", errors="replace")
    return Bye(tuple(sources), reason)
