"""The server's ``MediaGateway``: capture files, RTP sockets, addresses and disk room.

Captures live under the data directory and are flushed on a timer (not per packet);
the disk is checked on a timer too, so that a full disk turns new sessions away (503)
before it starts failing writes of the sessions in progress.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import time
from pathlib import Path

from callvault.recording.ports import Capture, MediaEndpoint
from callvault.rtp.srtp import SrtpReceiver
from callvault.rtp.stats import StreamStatistics
from callvault.sdp.answer import StreamChoice
from callvault.server.rtp import CaptureFile, PortPool, StreamEndpoint, open_stream_endpoint

log = logging.getLogger(__name__)

_CAPTURE_BUFFER = 64 * 1024


class ServerMedia:
    def __init__(
        self,
        *,
        data_dir: Path,
        pool: PortPool,
        bind_address: str,
        advertise_address: str | None,
        min_free_bytes: int,
    ) -> None:
        self.data_dir = data_dir
        self.pool = pool
        self.bind_address = bind_address
        self.advertise = advertise_address
        self.min_free_bytes = min_free_bytes
        self.captures: set[CaptureFile] = set()
        self.endpoints: set[StreamEndpoint] = set()
        self.disk_free = shutil.disk_usage(data_dir).free
        self._route_cache: dict[str, str] = {}

    # -- MediaGateway -----------------------------------------------------------------
    def open_capture(self, relative_path: str) -> Capture:
        path = self.data_dir / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        capture = CaptureFile(path.open("xb", buffering=_CAPTURE_BUFFER), relative_path)
        self.captures.add(capture)
        return capture

    async def open_stream(
        self, capture: Capture, choice: StreamChoice, srtp: SrtpReceiver | None
    ) -> MediaEndpoint:
        assert isinstance(capture, CaptureFile)
        stats = StreamStatistics(choice.clock_rate, started_at=time.time())
        endpoint = await open_stream_endpoint(
            self.pool, self.bind_address, capture, stats, srtp=srtp
        )
        self.endpoints.add(endpoint)
        return endpoint

    def close_stream(self, endpoint: MediaEndpoint) -> None:
        assert isinstance(endpoint, StreamEndpoint)
        if endpoint in self.endpoints:
            endpoint.close()
            self.endpoints.discard(endpoint)
            self.pool.give_back(endpoint.rtp_port)

    def close_capture(self, capture: Capture) -> None:
        capture.close()
        if isinstance(capture, CaptureFile):
            self.captures.discard(capture)

    def advertised_address(self, peer_host: str) -> str:
        if self.advertise:
            return self.advertise
        if not ipaddress.ip_address(self.bind_address).is_unspecified:
            return self.bind_address
        return self._route_to(peer_host)

    def can_accept_sessions(self) -> bool:
        return self.disk_free >= self.min_free_bytes

    # -- timers -------------------------------------------------------------------------
    def flush_captures(self) -> None:
        for capture in self.captures:
            capture.flush()

    def check_disk(self) -> None:
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError as exc:
            log.error("cannot check free disk space: %s", exc)
            free = 0
        if free < self.min_free_bytes <= self.disk_free:
            log.error(
                "free disk space %d MiB is below capture.min_free_mb: refusing new sessions",
                free // 2**20,
            )
        self.disk_free = free

    def _route_to(self, peer_host: str) -> str:
        """The local address the kernel would use to reach the SRC (no packet is sent)."""
        if peer_host in self._route_cache:
            return self._route_cache[peer_host]
        family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((peer_host, 9))
                address = str(probe.getsockname()[0])
        except OSError:
            address = "127.0.0.1" if family == socket.AF_INET else "::1"
        self._route_cache[peer_host] = address
        return address
