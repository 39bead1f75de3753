"""The capture file and port pool behind the RTP endpoints."""

from __future__ import annotations

import asyncio
import errno
import io
import socket
from pathlib import Path

import pytest

from callvault.config import PortRange
from callvault.rtp.pcap import read_pcap
from callvault.rtp.stats import StreamStatistics
from callvault.server.rtp import (
    CaptureFile,
    PortPool,
    PortPoolExhausted,
    open_stream_endpoint,
)
from tests.e2e.rtp_sender import rtp_packet


class FillingDisk(io.BytesIO):
    """A file whose disk fills up after ``room`` bytes (ENOSPC on flush)."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.flushed = b""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_full_disk_stops_the_capture_and_keeps_what_was_written() -> None:
    disk = FillingDisk(room=24 + 10 * (16 + 28 + 172))
    capture = CaptureFile(disk, "captures/x.pcap")  # type: ignore[arg-type]
    for seq in range(20):
        capture.write(
            1.0 + seq * 0.02,
            ("192.0.2.1", 4000),
            ("127.0.0.1", 30000),
            rtp_packet(0, seq, seq * 160, 1, b"\xff" * 160),
        )
    assert capture.disk_full
    assert capture.packets == 10
    assert capture.dropped == 10
    packets = list(read_pcap(io.BytesIO(disk.getvalue())))
    assert [p.payload[2:4] for p in packets] == [seq.to_bytes(2, "big") for seq in range(10)]
    capture.flush()  # no exception after the disk filled
    capture.close()


def test_capture_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    capture = CaptureFile(path.open("xb"), "c.pcap")
    capture.write(2.5, ("192.0.2.1", 4000), ("127.0.0.1", 30002), b"\x80\x00" + b"\x00" * 20)
    capture.close()
    (packet,) = read_pcap(path)
    assert packet.dst == ("127.0.0.1", 30002) and packet.ts == pytest.approx(2.5)


def test_port_pool_hands_out_even_ports_least_recently_used_first() -> None:
    pool = PortPool(PortRange(30001, 30009))
    taken = [pool.take() for _ in range(4)]
    assert taken == [30002, 30004, 30006, 30008]
    with pytest.raises(PortPoolExhausted):
        pool.take()
    pool.give_back(30004)
    pool.give_back(30002)
    assert pool.take() == 30004  # the one freed longest ago
    assert pool.in_use == 3


def test_busy_ports_are_skipped(tmp_path: Path) -> None:
    async def scenario() -> int:
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blocker.bind(("127.0.0.1", 0))
        busy = blocker.getsockname()[1]
        if busy % 2:
            busy -= 1
            blocker.close()
            blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            blocker.bind(("127.0.0.1", busy))
        pool = PortPool(PortRange(busy, busy + 5))
        capture = CaptureFile((tmp_path / "b.pcap").open("xb"), "b.pcap")
        endpoint = await open_stream_endpoint(pool, "127.0.0.1", capture, StreamStatistics())
        endpoint.close()
        capture.close()
        blocker.close()
        return endpoint.rtp_port - busy

    assert asyncio.run(scenario()) == 2
