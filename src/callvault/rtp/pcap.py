"""Capture files: received datagrams in classic libpcap format, so Wireshark and tshark
open them as they are.

``PcapWriter`` appends each datagram as received, behind a synthesised IPv4 or IPv6 and
UDP header carrying the real addresses and ports (link type LINKTYPE_RAW, microsecond
timestamps: the variant every tool reads). Headers are pre-packed per address pair and,
for IPv4, per payload length, so an IPv4 packet costs one small pack and one ``write``
(IPv6 adds its mandatory UDP checksum). The writer never flushes by itself: the owner
calls ``flush()`` on a timer, which bounds what a crash can lose. It does not own or
close the file.

``read_pcap`` yields the UDP datagrams of a capture (ours, or raw-IP / Ethernet captures
from elsewhere), tolerating a final record cut short by a crash.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "CapturedPacket",
    "PcapError",
    "PcapWriter",
    "read_pcap",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
_RAW_TYPES = frozenset({LINKTYPE_RAW, 12, 14, 228, 229})  # 12/14: old DLT_RAW, 228/229: v4/v6
SNAPLEN = 262_144
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_RECORD_BE = struct.Struct(">IIII")
_V4 = struct.Struct("!HHHHHH8sHHHH")
_V6 = struct.Struct("!IHBB32sHHHH")
_TEMPLATE_CACHE = 4096
_LENGTH_CACHE = 64
_ONES = 0xFFFF


class PcapError(ValueError):
    """A file is not a capture this module can read; the message says why."""


@dataclass(frozen=True, slots=True)
class CapturedPacket:
    """One UDP datagram from a capture: arrival time, addresses, UDP payload."""

    ts: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes

    def __repr__(self) -> str:
        return (
            f"<CapturedPacket {self.ts:.6f} {self.src[0]}:{self.src[1]} -> "
            f"{self.dst[0]}:{self.dst[1]} {len(self.payload)} bytes>"
        )


class _Template:
    """Pre-packed network headers for one (source, destination) pair."""

    __slots__ = ("addrs", "by_length", "dport", "partial", "sport", "v6")

    def __init__(self, src: tuple[str, int], dst: tuple[str, int]) -> None:
        a, b = _same_family(src[0], dst[0])
        self.sport, self.dport = src[1], dst[1]
        self.addrs = a.packed + b.packed
        self.v6 = a.version == 6
        self.by_length: dict[int, bytes] = {}
        words = sum(struct.unpack(f"!{len(self.addrs) // 2}H", self.addrs))
        if self.v6:
            # Pseudo-header (addresses, next header) and the UDP ports; the length
            # and the payload are added per packet.
            self.partial = words + 17 + self.sport + self.dport
        else:
            # Every IPv4 header word but total length (id 0, DF, TTL 64, UDP).
            self.partial = words + 0x4500 + 0x4000 + 0x4011

    def header(self, payload: bytes) -> bytes:
        size = len(payload)
        if self.v6:
            udp_length = 8 + size
            data = int.from_bytes(payload, "big")
            if size & 1:
                data <<= 8
            # The one's complement sum of 16-bit words is the sum modulo 0xFFFF, and
            # a big integer modulo 0xFFFF sums its 16-bit digits: no Python loop.
            total = (self.partial + 2 * udp_length + data % _ONES) % _ONES or _ONES
            checksum = (_ONES - total) or _ONES
            return _V6.pack(
                0x6000_0000, udp_length, 17, 64, self.addrs, self.sport, self.dport,
                udp_length, checksum,
            )  # fmt: skip
        header = self.by_length.get(size)
        if header is None:
            total_length = 28 + size
            checksum = _ONES - ((self.partial + total_length) % _ONES or _ONES)
            header = _V4.pack(
                0x4500, total_length, 0, 0x4000, 0x4011, checksum, self.addrs,
                self.sport, self.dport, 8 + size, 0,
            )  # fmt: skip
            if len(self.by_length) < _LENGTH_CACHE:
                self.by_length[size] = header
        return header


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _same_family(src: str, dst: str) -> tuple[_Address, _Address]:
    a = ipaddress.ip_address(src)
    b = ipaddress.ip_address(dst)
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; show them as IPv4.
    a4, b4 = _unmapped(a), _unmapped(b)
    if a4.version == 4 and b4.version == 4:
        return a4, b4
    if a.version != b.version:
        raise ValueError(f"cannot put IPv{a.version} {src} and IPv{b.version} {dst} in one packet")
    return a, b


def _unmapped(address: _Address) -> _Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class PcapWriter:
    """Appends datagrams to a pcap stream; see the module docstring."""

    __slots__ = ("_file", "_templates", "bytes_written", "packets_written")

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._templates: dict[tuple[tuple[str, int], tuple[str, int]], _Template] = {}
        self.packets_written = 0
        self.bytes_written = 0

    def write_header(self) -> int:
        """The 24-byte global header: once, at the start of a new file."""
        header = _GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW)
        self._file.write(header)
        self.bytes_written += len(header)
        return len(header)

    def write_packet(
        self, ts: float, src: tuple[str, int], dst: tuple[str, int], payload: bytes
    ) -> int:
        """Append one UDP datagram received at ``ts`` (Unix seconds); bytes written."""
        template = self._templates.get((src, dst))
        if template is None:
            if len(self._templates) >= _TEMPLATE_CACHE:
                self._templates.clear()  # a port sprayed from many addresses
            template = self._templates[(src, dst)] = _Template(src, dst)
        # The common case inline: an IPv4 header already packed for this length.
        network = template.by_length.get(len(payload)) or template.header(payload)
        length = len(network) + len(payload)
        seconds, micros = divmod(round(ts * 1_000_000), 1_000_000)
        self._file.write(
            b"".join((_RECORD.pack(seconds, micros, length, length), network, payload))
        )
        self.packets_written += 1
        self.bytes_written += 16 + length
        return 16 + length

    def flush(self) -> None:
        self._file.flush()


def read_pcap(source: str | os.PathLike[str] | BinaryIO) -> Iterator[CapturedPacket]:
    """The UDP datagrams of a capture file, in file order.

    An empty file and a file with only its global header yield nothing; a final record
    cut short (a crash while writing) ends the iteration quietly. A file that is not a
    classic pcap, or whose link type is not raw IP or Ethernet, raises ``PcapError``.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fileobj:  # noqa: PTH123 - also takes a file object
            yield from _read(fileobj)
    else:
        yield from _read(source)


def _read(fileobj: BinaryIO) -> Iterator[CapturedPacket]:
    head = fileobj.read(24)
    if not head:
        return
    if len(head) < 24:
        raise PcapError(f"pcap global header truncated: {len(head)} of 24 bytes")
    magic = head[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order, record = "<", _RECORD
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order, record = ">", _RECORD_BE
    elif magic == b"\x0a\x0d\x0d\x0a":
        raise PcapError("pcapng files are not supported, only classic pcap")
    else:
        raise PcapError(f"bad pcap magic {magic.hex()}")
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    snaplen, linktype = struct.unpack(order + "II", head[16:24])
    if linktype == LINKTYPE_ETHERNET:
        ethernet = True
    elif linktype in _RAW_TYPES:
        ethernet = False
    else:
        raise PcapError(f"pcap link type {linktype} is not supported (raw IP or Ethernet only)")
    limit = max(snaplen, SNAPLEN)
    names: dict[bytes, str] = {}
    offset = 24
    while True:
        rec = fileobj.read(16)
        if len(rec) < 16:
            return
        sec, frac, captured, original = record.unpack(rec)
        if captured > limit:
            raise PcapError(f"pcap record at offset {offset} claims {captured} bytes")
        frame = fileobj.read(captured)
        if len(frame) < captured:
            return
        offset += 16 + captured
        if captured < original:
            continue  # cut at the snap length: the UDP payload is incomplete
        packet = _udp(frame, ethernet, names)
        if packet is not None:
            src, dst, payload = packet
            yield CapturedPacket(sec + frac * scale, src, dst, payload)


def _udp(
    frame: bytes, ethernet: bool, names: dict[bytes, str]
) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    start = 0
    if ethernet:
        if len(frame) < 14:
            return None
        ethertype = int.from_bytes(frame[12:14], "big")
        start = 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= start + 4:  # VLAN tags
            ethertype = int.from_bytes(frame[start + 2 : start + 4], "big")
            start += 4
        if ethertype not in (0x0800, 0x86DD):
            return None
    if len(frame) < start + 1:
        return None
    version = frame[start] >> 4
    if version == 4:
        ihl = (frame[start] & 0x0F) * 4
        if len(frame) < start + ihl + 8 or ihl < 20 or frame[start + 9] != 17:
            return None
        if int.from_bytes(frame[start + 6 : start + 8], "big") & 0x3FFF:
            return None  # a fragment: never ours, not worth reassembling
        src_raw, dst_raw = frame[start + 12 : start + 16], frame[start + 16 : start + 20]
        udp = start + ihl
    elif version == 6:
        if len(frame) < start + 48 or frame[start + 6] != 17:
            return None
        src_raw, dst_raw = frame[start + 8 : start + 24], frame[start + 24 : start + 40]
        udp = start + 40
    else:
        return None
    sport, dport, length = struct.unpack_from("!HHH", frame, udp)
    if length < 8 or udp + length > len(frame):
        return None
    return (
        (_name(src_raw, names), sport),
        (_name(dst_raw, names), dport),
        frame[udp + 8 : udp + length],
    )


def _name(raw: bytes, names: dict[bytes, str]) -> str:
    name = names.get(raw)
    if name is None:
        name = names[raw] = str(ipaddress.ip_address(raw))
    return name
