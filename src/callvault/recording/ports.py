"""What the recording layer needs from the process around it, as protocols.

``recording/`` decides what happens to a call; the asyncio side (``server/``) owns the
sockets, files and threads. These protocols are the seam: the server implements them,
tests can implement them in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from callvault.rtp.srtp import SrtpReceiver
from callvault.rtp.stats import StreamStatistics
from callvault.sdp.answer import StreamChoice


class Capture(Protocol):
    path: str
    disk_full: bool

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MediaEndpoint(Protocol):
    rtp_port: int
    paused: bool
    last_packet_at: float | None
    stats: StreamStatistics
    srtp: SrtpReceiver | None

    def close(self) -> None: ...


class MediaGateway(Protocol):
    """Ports, sockets and capture files for recording sessions."""

    def open_capture(self, relative_path: str) -> Capture: ...

    async def open_stream(
        self, capture: Capture, choice: StreamChoice, srtp: SrtpReceiver | None
    ) -> MediaEndpoint: ...

    def close_stream(self, endpoint: MediaEndpoint) -> None: ...

    def close_capture(self, capture: Capture) -> None: ...

    def advertised_address(self, peer_host: str) -> str: ...

    def can_accept_sessions(self) -> bool: ...


class JobQueue(Protocol):
    """Hands finished recordings to the finalize workers (after commit)."""

    def enqueue_finalize(self, recording_id: int) -> None: ...


Clock = Callable[[], float]
