"""SIP over UDP and TCP on one port: bytes in, bytes out, nothing else.

Each datagram, or each message the TCP framer cuts out of a stream, goes to one
callback with the ``Peer`` it came from; ``send`` writes a message back to a peer
(over the TCP connection it arrived on when there is one). All SIP meaning lives in
``callvault.sip`` and ``callvault.recording``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

from callvault.sip.errors import SipSyntaxError
from callvault.sip.events import Peer
from callvault.sip.framing import StreamFramer
from callvault.sip.message import Request, Response

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes, Peer], None]
FramingErrorHandler = Callable[[SipSyntaxError, Peer, bytes], None]

_TCP_IDLE_TIMEOUT = 300.0


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransports) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner.datagrams_received += 1
        if len(data) > self._owner.max_message_size:
            self._owner.on_framing_error(
                SipSyntaxError("Message Too Large", 513), Peer("udp", addr[0], addr[1]), data
            )
            return
        if data.strip(b"\r\n") == b"":
            return  # keep-alive
        self._owner.on_message(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransports, connection_id: int) -> None:
        self._owner = owner
        self.connection_id = connection_id
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self._framer = StreamFramer(min(owner.max_message_size, owner.tcp_buffer))
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        host, port = self.transport.get_extra_info("peername")[:2]
        self.peer = Peer("tcp", host, port, self.connection_id)
        self._owner.connections[self.connection_id] = self
        self._touch()

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        self._touch()
        for item in self._framer.feed(data):
            if isinstance(item, SipSyntaxError):
                self._owner.on_framing_error(item, self.peer, b"")
                if item.fatal_for_stream:
                    self.transport.close()
                    return
            elif item.strip(b"\r\n") == b"":
                # RFC 5626 keep-alive ping (CRLFCRLF): answer with a pong (CRLF).
                self.transport.write(b"\r\n")
            else:
                self._owner.on_message(item, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connections.pop(self.connection_id, None)
        if self._idle is not None:
            self._idle.cancel()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(_TCP_IDLE_TIMEOUT, self._close_idle)

    def _close_idle(self) -> None:
        if self.transport is not None:
            self.transport.close()


class SipTransports:
    """The UDP socket and TCP listener of one SIP address."""

    def __init__(
        self,
        on_message: MessageHandler,
        on_framing_error: FramingErrorHandler,
        *,
        max_message_size: int = 65535,
        tcp_buffer: int = 262144,
    ) -> None:
        self.on_message = on_message
        self.tcp_buffer = tcp_buffer
        self.on_framing_error = on_framing_error
        self.max_message_size = max_message_size
        self.connections: dict[int, _TcpConnection] = {}
        self.datagrams_received = 0
        self._ids = itertools.count(1)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self.local_host = ""
        self.local_port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((host, port))
        self.local_host, self.local_port = sock.getsockname()[:2]
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        self._tcp = await loop.create_server(
            lambda: _TcpConnection(self, next(self._ids)),
            host=host,
            port=self.local_port,
            reuse_address=True,
            backlog=1024,
        )

    def send(self, message: Request | Response, peer: Peer) -> None:
        self.send_raw(bytes(message), peer)

    def send_raw(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, (peer.host, peer.port))
            return
        connection = self.connections.get(peer.connection_id or -1)
        if connection is None:
            connection = self._find_connection(peer)
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            return
        # RFC 3261 18.2.2: the connection is gone, so open a new one to the peer.
        asyncio.get_running_loop().create_task(self._connect_and_send(data, peer))

    def _find_connection(self, peer: Peer) -> _TcpConnection | None:
        for connection in self.connections.values():
            if connection.peer is not None and (connection.peer.host, connection.peer.port) == (
                peer.host,
                peer.port,
            ):
                return connection
        return None

    async def _connect_and_send(self, data: bytes, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _TcpConnection(self, next(self._ids)), peer.host, peer.port
            )
        except OSError as exc:
            log.warning("cannot open TCP connection to %s:%d: %s", peer.host, peer.port, exc)
            return
        transport.write(data)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for connection in list(self.connections.values()):
                if connection.transport is not None:
                    connection.transport.close()
            await self._tcp.wait_closed()
