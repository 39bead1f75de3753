"""Per-packet cost of the recorder's receive callback, piece by piece, and a prototype.

Feeds datagrams straight into ``callvault.server.rtp._RtpProtocol.datagram_received``
(the code the server runs for every RTP packet, with real ``StreamStatistics`` and
``CaptureFile`` objects writing pcap files in a temporary directory) for many streams
round-robin, as uvloop would call it: a fresh ``bytes`` and a fresh ``(str, int)``
address per packet. It times the callback whole, without its capture write, without
its statistics, and a prototype of a cheaper callback (``FastRtpProtocol`` below) that
writes byte-identical pcap records and identical statistics (checked before timing).

What uvloop/libuv and the kernel cost per packet on top of this is not measured here
(see ``load.py --perf`` and ``baseline.py``).

    .venv/bin/python bench/hotpath.py [--streams 2000] [--packets 400000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import callvault.server.rtp as server_rtp
from callvault.rtp.pcap import _Template
from callvault.rtp.stats import StreamStatistics
from callvault.server.rtp import CaptureFile, StreamEndpoint, _RtpProtocol

_SEQ_TS_SSRC = struct.Struct("!HII")
_RECORD = struct.Struct("<IIII")
T0 = 1_790_000_000.0


class _NoCapture:
    def write(self, *args: object) -> None:
        pass


class _NoStats(StreamStatistics):
    __slots__ = ()

    def update(self, seq: int, timestamp: int, ssrc: int, size: int, now: float) -> None:
        pass


class FastCapture:
    """Prototype capture: records appended to one bytearray, written out on flush."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.file = fileobj
        self.buffer = bytearray()
        self.ok = True  # the global header is written by whoever opened the file

    def flush(self) -> None:
        self.file.write(self.buffer)
        self.buffer.clear()
        self.file.flush()


class FastRtpProtocol(asyncio.DatagramProtocol):
    """Prototype of ``_RtpProtocol`` doing the same work with less per packet.

    * The network header is looked up by datagram length in a dict kept for the last
      source address; a different source rebuilds it (``_Template``, as PcapWriter).
    * The record is appended to a bytearray (no ``b"".join``, no BufferedWriter call).
    * Bound methods and the clock are fetched once, not per packet.
    """

    __slots__ = ("_capture", "_endpoint", "_headers", "_last_addr", "_local", "_update")

    def __init__(self, endpoint: StreamEndpoint, capture: FastCapture) -> None:
        self._endpoint = endpoint
        self._capture = capture
        self._local = (endpoint.local_address, endpoint.rtp_port)
        self._update = endpoint.stats.update
        self._last_addr: object = None
        self._headers: dict[int, bytes] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        endpoint = self._endpoint
        now = server_rtp.time()
        if endpoint.paused:
            endpoint.dropped_while_paused += 1
            return
        size = len(data)
        if size < 12 or data[0] & 0xC0 != 0x80:
            endpoint.stats.count_garbage()
            return
        seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        self._update(seq, timestamp, ssrc, size, now)
        endpoint.last_packet_at = now
        capture = self._capture
        if not capture.ok:
            return
        if addr != self._last_addr:
            self._last_addr = addr
            self._headers = {}
        header = self._headers.get(size)
        if header is None:
            template = _Template((addr[0], addr[1]), self._local)
            header = self._headers[size] = template.header(data)
        micros = round(now * 1_000_000)
        length = len(header) + size
        buffer = capture.buffer
        buffer += _RECORD.pack(micros // 1_000_000, micros % 1_000_000, length, length)
        buffer += header
        buffer += data


def _traffic(streams: int, packets: int) -> list[tuple[int, bytes]]:
    out = []
    for n in range(packets):
        stream, seq = n % streams, n // streams
        header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, 160 * seq, 0x1000 + stream)
        out.append((stream, header + b"\xff" * 160))
    return out


def _feed(callbacks: list[Callable[[bytes, Any], None]], traffic: list[tuple[int, bytes]]) -> float:
    ip = b"127.0.0.1"
    start = time.perf_counter()
    for stream, data in traffic:
        # uvloop hands over a new bytes and a new (str, int) tuple for every datagram.
        callbacks[stream](bytes(data), (ip.decode(), 40000))
    return time.perf_counter() - start


_OPEN: list[BinaryIO] = []


def _close_all() -> None:
    for f in _OPEN:
        f.close()
    _OPEN.clear()


def _endpoints(streams: int, directory: Path, stats: type[StreamStatistics]) -> list[Any]:
    # Two streams (one call) share a capture file, as in the server.
    files = [(directory / f"{i}.pcap").open("ab", buffering=64 * 1024) for i in range(streams // 2)]
    _OPEN.extend(files)
    captures: dict[int, CaptureFile] = {}
    out = []
    for i in range(streams):
        capture = captures.setdefault(i // 2, CaptureFile(files[i // 2], f"{i // 2}.pcap"))
        endpoint = StreamEndpoint(20000 + 2 * i, capture, stats(8000, started_at=T0))
        endpoint.local_address = "127.0.0.1"
        out.append(endpoint)
    return out


def check_identical(directory: Path, streams: int, packets: int) -> None:
    """Same packets, same clock: the prototype's pcap bytes and statistics must match."""
    traffic = _traffic(streams, packets)
    clock = iter(T0 + k * 0.000_013 for k in range(10 * packets))
    real_time = server_rtp.time
    server_rtp.time = lambda: next(clock)  # type: ignore[assignment]
    try:
        old = _endpoints(streams, directory / "old", StreamStatistics)
        _feed([_RtpProtocol(e).datagram_received for e in old], traffic)
        clock = iter(T0 + k * 0.000_013 for k in range(10 * packets))
        new = _endpoints(streams, directory / "new", StreamStatistics)
        fast = {}
        for e in new:
            fast.setdefault(id(e.capture), FastCapture(e.capture._file))
        protocols = [FastRtpProtocol(e, fast[id(e.capture)]) for e in new]
        _feed([p.datagram_received for p in protocols], traffic)
    finally:
        server_rtp.time = real_time
    for capture in fast.values():
        capture.flush()
    _close_all()
    for a, b in zip(old, new, strict=True):
        assert a.stats.snapshot() == b.stats.snapshot(), "statistics differ"
    for i in range(streams // 2):
        before = (directory / "old" / f"{i}.pcap").read_bytes()
        after = (directory / "new" / f"{i}.pcap").read_bytes()
        assert before == after, f"capture {i} differs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--packets", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant, best shown")
    args = parser.parse_args()
    traffic = _traffic(args.streams, args.packets)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub in ("old", "new"):
            (root / sub).mkdir()
        check_identical(root, min(args.streams, 200), 20_000)
        print("prototype output identical to _RtpProtocol (pcap bytes and statistics)")
        variants: dict[str, Callable[[Path], list[Callable[[bytes, Any], None]]]] = {
            "harness only (bytes + address per packet, no-op call)": lambda d: [
                (lambda data, addr: None) for _ in range(args.streams)
            ],
            "_RtpProtocol.datagram_received (as the server runs it)": lambda d: [
                _RtpProtocol(e).datagram_received
                for e in _endpoints(args.streams, d, StreamStatistics)
            ],
            "  without the capture write": lambda d: [
                _RtpProtocol(_replace_capture(e)).datagram_received
                for e in _endpoints(args.streams, d, StreamStatistics)
            ],
            "  without the statistics": lambda d: [
                _RtpProtocol(e).datagram_received for e in _endpoints(args.streams, d, _NoStats)
            ],
            "prototype FastRtpProtocol (same output)": lambda d: _fast(args.streams, d),
        }
        rows = []
        for label, make in variants.items():
            best = float("inf")
            for run in range(args.repeat):
                directory = root / f"{len(rows)}-{run}"
                directory.mkdir()
                callbacks = make(directory)
                best = min(best, _feed(callbacks, traffic))
                _close_all()
            rows.append((label, best))
        base = rows[0][1]
        width = max(len(label) for label, _ in rows)
        print(f"{args.streams} streams, {args.packets} packets, best of {args.repeat}")
        print(f"{'variant':<{width}}  {'µs/packet':>9}  {'minus harness':>13}")
        for label, seconds in rows:
            us = 1e6 * seconds / args.packets
            print(f"{label:<{width}}  {us:>9.2f}  {us - 1e6 * base / args.packets:>13.2f}")
    return 0


def _replace_capture(endpoint: StreamEndpoint) -> StreamEndpoint:
    endpoint.capture = _NoCapture()  # type: ignore[assignment]
    return endpoint


def _fast(streams: int, directory: Path) -> list[Callable[[bytes, Any], None]]:
    endpoints = _endpoints(streams, directory, StreamStatistics)
    captures: dict[int, FastCapture] = {}
    out = []
    for e in endpoints:
        capture = captures.setdefault(id(e.capture), FastCapture(e.capture._file))
        out.append(FastRtpProtocol(e, capture).datagram_received)
    return out


if __name__ == "__main__":
    sys.exit(main())
