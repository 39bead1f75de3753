"""Micro-benchmark of the per-packet receive path: peek header -> statistics -> pcap write.

Simulates SESSIONS concurrent recording sessions with two streams each, every session
writing its own capture file in a temporary directory (buffered, flushed only when the
files are closed at the end, as the server's 0.5 s timer would). Prints packets/s per
stage on one core. The target is ~200k packets/s for thousands of calls on two cores,
so the whole path should stay well under 10 us per packet, leaving room for the
asyncio/uvloop receive cost on top.

    .venv/bin/python bench/bench_capture_path.py [--packets 400000] [--sessions 1000]
        [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from callvault.rtp.packet import RtpPacket, parse_rtp, peek_rtp
from callvault.rtp.pcap import PcapWriter
from callvault.rtp.stats import StreamStatistics

Address = tuple[str, int]
Traffic = list[tuple[int, bytes, Address, Address]]
T0 = 1_700_000_000.0
STEP = 0.00001


def build(sessions: int, packets: int, ipv6: bool) -> Traffic:
    """Round-robin over 2 * sessions streams: (stream index, datagram, src, dst)."""
    streams = 2 * sessions
    local = "2001:db8::7" if ipv6 else "198.51.100.7"
    out = []
    for n in range(packets):
        stream, seq = n % streams, n // streams
        host = f"2001:db8:1::{stream:x}" if ipv6 else f"10.{stream >> 8}.{stream & 255}.1"
        packet = RtpPacket(0, seq & 0xFFFF, 160 * seq, 0x1000 + stream, payload=b"\xd5" * 160)
        out.append((stream, bytes(packet), (host, 40000), (local, 20000 + 2 * stream)))
    return out


def peek_only(traffic: Traffic) -> None:
    for _, data, _, _ in traffic:
        peek_rtp(data)


def parse_full(traffic: Traffic) -> None:
    for _, data, _, _ in traffic:
        parse_rtp(data)


def peek_and_stats(traffic: Traffic, stats: list[StreamStatistics]) -> None:
    now = T0
    for stream, data, _, _ in traffic:
        header = peek_rtp(data)
        if header is None:
            stats[stream].count_garbage()
        else:
            stats[stream].update(header[1], header[2], header[3], len(data), now)
        now += STEP


def write_only(traffic: Traffic, writers: list[PcapWriter]) -> None:
    now = T0
    for stream, data, src, dst in traffic:
        writers[stream >> 1].write_packet(now, src, dst, data)
        now += STEP


def full_path(traffic: Traffic, stats: list[StreamStatistics], writers: list[PcapWriter]) -> None:
    now = T0
    for stream, data, src, dst in traffic:
        writers[stream >> 1].write_packet(now, src, dst, data)
        header = peek_rtp(data)
        if header is None:
            stats[stream].count_garbage()
        else:
            stats[stream].update(header[1], header[2], header[3], len(data), now)
        now += STEP


def run(
    sessions: int, packets: int, ipv6: bool, repeat: int, rows: list[tuple[str, int, float]]
) -> None:
    family = "IPv6" if ipv6 else "IPv4"
    traffic = build(sessions, packets, ipv6)

    def stats() -> list[StreamStatistics]:
        return [StreamStatistics(8000) for _ in range(2 * sessions)]

    with tempfile.TemporaryDirectory() as tmp:
        files = [(Path(tmp) / f"{i}.pcap").open("wb") for i in range(sessions)]
        writers = [PcapWriter(f) for f in files]
        for writer in writers:
            writer.write_header()
        stages: list[tuple[str, Callable[[], None]]] = [
            ("peek_rtp", lambda: peek_only(traffic)),
            ("parse_rtp (full, offline use)", lambda: parse_full(traffic)),
            ("peek_rtp + stats.update", lambda: peek_and_stats(traffic, stats())),
            ("pcap write_packet", lambda: write_only(traffic, writers)),
            ("peek + update + write", lambda: full_path(traffic, stats(), writers)),
        ]
        for label, stage in stages:
            # Best of several runs: the least disturbed by other work on the machine.
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                stage()
                times.append(time.perf_counter() - start)
            rows.append((f"{family} {label}", len(traffic), min(times)))
        start = time.perf_counter()
        for f in files:
            f.close()
        rows.append((f"{family} flush + close (per file)", sessions, time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packets", type=int, default=400_000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per stage, best is shown")
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    for ipv6 in (False, True):
        run(args.sessions, args.packets, ipv6, args.repeat, rows)
    width = max(len(label) for label, _, _ in rows)
    print(f"{'stage':<{width}}  {'items':>8}  {'seconds':>8}  {'items/s':>11}  {'us/item':>8}")
    for label, count, seconds in rows:
        rate = count / seconds
        print(f"{label:<{width}}  {count:>8}  {seconds:>8.3f}  {rate:>11,.0f}  {1e6 / rate:>8.2f}")


if __name__ == "__main__":
    main()
