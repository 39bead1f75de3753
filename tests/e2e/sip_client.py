"""A bare SIP client for end-to-end tests: send raw bytes, read raw replies.

Deliberately independent of callvault's own parser: replies are read with plain
string handling, so a parser bug cannot hide itself in its own test.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def to_tag(self) -> str | None:
        match = re.search(r";\s*tag=([^;>\s]+)", self.header("To") or "")
        return match.group(1) if match else None

    def m_lines(self) -> list[dict[str, str | int | None]]:
        """Each m-line of an SDP body: port, direction, label, formats."""
        text = self.body.decode(errors="replace").replace("\r\n", "\n")
        sections = text.split("\nm=")[1:]
        session_direction = None
        for line in text.split("\nm=")[0].split("\n"):
            if line in ("a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"):
                session_direction = line[2:]
        out: list[dict[str, str | int | None]] = []
        for section in sections:
            lines = section.split("\n")
            parts = lines[0].split()
            direction = session_direction
            label = None
            for line in lines[1:]:
                if line in ("a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"):
                    direction = line[2:]
                if line.startswith("a=label:"):
                    label = line[len("a=label:") :]
            out.append(
                {
                    "media": parts[0],
                    "port": int(parts[1]),
                    "proto": parts[2],
                    "formats": " ".join(parts[3:]),
                    "direction": direction,
                    "label": label,
                }
            )
        return out


def parse_reply(data: bytes) -> Reply:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    _, status, reason = [*lines[0].split(" ", 2), ""][:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    length = next((int(v) for k, v in headers if k.lower() in ("content-length", "l")), 0)
    return Reply(int(status), reason, headers, rest[:length])


class SipClient:
    """One UDP socket or TCP connection to the server."""

    def __init__(self, server_port: int, transport: str = "udp") -> None:
        self.transport = transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect(("127.0.0.1", server_port))
        else:
            self.sock = socket.create_connection(("127.0.0.1", server_port), timeout=10)
        self.sock.settimeout(10)
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, timeout: float = 10.0) -> Reply | None:
        """The next reply, or None when nothing comes within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            if self.transport == "udp":
                return parse_reply(self.sock.recv(65535))
            return self._receive_stream(timeout)
        except TimeoutError:
            return None

    def receive_datagram(self, timeout: float = 10.0) -> bytes | None:
        """The next raw datagram (a request the server sent us, say), or None."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None

    def _receive_stream(self, timeout: float) -> Reply | None:
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                length = int(match.group(1)) if match else 0
                if len(rest) >= length:
                    self._buffer = rest[length:]
                    return parse_reply(head + sep + rest[:length])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65535)
            if not chunk:
                return None
            self._buffer += chunk

    def final(self, timeout: float = 10.0) -> Reply | None:
        """Skip provisional replies; the final one (or None)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            reply = self.receive(remaining)
            if reply is None or reply.status >= 200:
                return reply
        return None
