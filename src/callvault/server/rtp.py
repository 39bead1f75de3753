"""RTP/RTCP receive endpoints on asyncio, and the port pool they come from.

The receive path does the least possible per packet: a two-byte sanity check, an
optional SRTP unprotect, one ``struct.unpack_from`` for the statistics, and an append to
the session's pcap capture. No decoding happens here (REQUIREMENTS X3); decoding is the
finalize job's business. A stream that is paused (a=inactive, c=0.0.0.0, port 0) drops
what arrives so that nothing said during a PCI DSS pause is captured (U4).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from time import time
from typing import Any, BinaryIO

from callvault.config import PortRange
from callvault.rtp.pcap import PcapWriter
from callvault.rtp.srtp import SrtpError, SrtpReceiver
from callvault.rtp.stats import StreamStatistics

log = logging.getLogger(__name__)

_SEQ_TS_SSRC = struct.Struct("!HII")
_RECEIVE_BUFFER = 1 << 20


class PortPoolExhausted(RuntimeError):
    """No free even/odd port pair is left in the configured RTP range."""


class CaptureFile:
    """One session's pcap file: every stream of the session appends to it.

    Writes go to a user-space buffer; ``flush`` (called on a timer by the server)
    pushes them to the kernel, which is what bounds the loss on ``kill -9``. A full
    disk stops the writes of this capture (``disk_full``) without touching what is
    already on disk.
    """

    def __init__(self, fileobj: BinaryIO, path: str) -> None:
        self.path = path
        self._file = fileobj
        self._writer = PcapWriter(fileobj)
        self._writer.write_header()
        self.packets = 0
        self.bytes = 0
        self.dropped = 0
        self.disk_full = False
        self.closed = False

    def write(self, ts: float, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        if self.disk_full or self.closed:
            self.dropped += 1
            return
        try:
            self.bytes += self._writer.write_packet(ts, src, dst, data)
            self.packets += 1
        except OSError as exc:
            self._on_write_error(exc)

    def flush(self) -> None:
        if self.closed or self.disk_full:
            return
        try:
            self._file.flush()
        except OSError as exc:
            self._on_write_error(exc)

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        try:
            self._file.close()
        except OSError as exc:
            log.error("closing capture %s failed: %s", self.path, exc)

    def _on_write_error(self, exc: OSError) -> None:
        self.dropped += 1
        if not self.disk_full:
            self.disk_full = True
            log.error("capture %s stopped writing: %s", self.path, exc)


@dataclass(slots=True, eq=False)
class StreamEndpoint:
    """The sockets and live state of one received media stream (one m-line)."""

    rtp_port: int
    capture: CaptureFile
    stats: StreamStatistics
    srtp: SrtpReceiver | None = None
    paused: bool = False
    dropped_while_paused: int = 0
    local_address: str = "0.0.0.0"
    last_packet_at: float | None = None
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)

    @property
    def rtcp_port(self) -> int:
        return self.rtp_port + 1

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()


class _RtpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("_endpoint", "_local")

    def __init__(self, endpoint: StreamEndpoint) -> None:
        self._endpoint = endpoint
        self._local = (endpoint.local_address, endpoint.rtp_port)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        endpoint = self._endpoint
        now = time()
        if endpoint.paused:
            endpoint.dropped_while_paused += 1
            return
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            endpoint.stats.count_garbage()
            return
        if endpoint.srtp is not None:
            try:
                data = endpoint.srtp.unprotect(data)
            except SrtpError:
                endpoint.stats.count_garbage()
                return
        seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        endpoint.stats.update(seq, timestamp, ssrc, len(data), now)
        endpoint.last_packet_at = now
        endpoint.capture.write(now, (addr[0], addr[1]), self._local, data)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected receive socket say nothing about our state.
        log.debug("RTP port %d: %s", self._local[1], exc)


class _RtcpProtocol(asyncio.DatagramProtocol):
    """RTCP is captured beside RTP (sender reports help later alignment)."""

    __slots__ = ("_endpoint", "_local")

    def __init__(self, endpoint: StreamEndpoint) -> None:
        self._endpoint = endpoint
        self._local = (endpoint.local_address, endpoint.rtcp_port)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        endpoint = self._endpoint
        if endpoint.paused:
            return
        if len(data) < 8 or data[0] & 0xC0 != 0x80 or not 192 <= data[1] <= 223:
            endpoint.stats.count_garbage()
            return
        if endpoint.srtp is not None:
            try:
                data = endpoint.srtp.unprotect_rtcp(data)
            except SrtpError:
                endpoint.stats.count_garbage()
                return
        endpoint.capture.write(time(), (addr[0], addr[1]), self._local, data)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTCP port %d: %s", self._local[1], exc)


class PortPool:
    """Even RTP ports (RTCP on the odd one above) handed out least-recently-used first.

    Reusing the port freed longest ago keeps stray packets of an ended call from
    landing in a new one.
    """

    def __init__(self, ports: PortRange) -> None:
        low = ports.low + (ports.low % 2)
        self._free: deque[int] = deque(range(low, ports.high, 2))
        self._in_use: set[int] = set()
        self.size = len(self._free)

    def __len__(self) -> int:
        return len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def take(self) -> int:
        if not self._free:
            raise PortPoolExhausted("no free RTP port pair")
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def give_back(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.discard(port)
            self._free.append(port)


async def open_stream_endpoint(
    pool: PortPool,
    bind_address: str,
    capture: CaptureFile,
    stats: StreamStatistics,
    *,
    srtp: SrtpReceiver | None = None,
    advertised_address: str | None = None,
) -> StreamEndpoint:
    """Bind an RTP/RTCP pair from the pool; ports taken by other programs are skipped."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    attempts = min(len(pool), 64)
    for _ in range(max(attempts, 1)):
        port = pool.take()
        endpoint = StreamEndpoint(
            rtp_port=port,
            capture=capture,
            stats=stats,
            srtp=srtp,
            local_address=advertised_address or bind_address,
        )
        try:
            protocols: list[tuple[int, asyncio.DatagramProtocol]] = [
                (port, _RtpProtocol(endpoint)),
                (port + 1, _RtcpProtocol(endpoint)),
            ]
            for number, protocol in protocols:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
                    sock.bind((bind_address, number))
                except OSError:
                    sock.close()
                    raise
                transport, _ = await loop.create_datagram_endpoint(
                    lambda p=protocol: p,  # type: ignore[misc]
                    sock=sock,
                )
                endpoint.transports.append(transport)
        except OSError as exc:
            endpoint.close()
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                pool.give_back(port)
                raise
            log.warning("RTP port %d unavailable (%s); trying another", port, exc.strerror)
            # Keep the busy port out of circulation for a while: put it at the back.
            pool.give_back(port)
            continue
        return endpoint
    raise PortPoolExhausted("no bindable RTP port pair found")
