"""A paced RTP sender for end-to-end tests: a sine tone as G.711, 20 ms a packet.

It plays the part of an SRC's media for streams SIPp cannot play (SIPp sends only to
the first m-line). Runs in a thread; ``gaps`` drops chosen packets to simulate loss.
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from collections.abc import Iterable

import numpy as np

from callvault.media.g711 import encode_alaw, encode_ulaw

SAMPLES = 160  # 20 ms at 8 kHz


def tone_payloads(frequency: float, packets: int, *, codec: str = "PCMA") -> list[bytes]:
    t = np.arange(packets * SAMPLES) / 8000.0
    pcm = (8000 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
    encode = encode_alaw if codec == "PCMA" else encode_ulaw
    return [encode(pcm[i * SAMPLES : (i + 1) * SAMPLES]) for i in range(packets)]


def rtp_packet(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, timestamp, ssrc) + payload


class RtpSender(threading.Thread):
    def __init__(
        self,
        destination: tuple[str, int],
        *,
        frequency: float = 1000.0,
        seconds: float = 4.0,
        payload_type: int = 8,
        ssrc: int = 0x1234ABCD,
        gaps: Iterable[int] = (),
        source_port: int = 0,
    ) -> None:
        super().__init__(daemon=True)
        self.destination = destination
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.gaps = set(gaps)
        codec = "PCMA" if payload_type == 8 else "PCMU"
        self.payloads = tone_payloads(frequency, int(seconds * 50), codec=codec)
        self.sent = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", source_port))
        self.stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        for index, payload in enumerate(self.payloads):
            if self.stop_event.is_set():
                break
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if index in self.gaps:
                continue
            data = rtp_packet(self.payload_type, 1000 + index, 160 * index, self.ssrc, payload)
            self.sock.sendto(data, self.destination)
            self.sent += 1
        self.sock.close()

    def stop(self) -> None:
        self.stop_event.set()
