"""A minimal SIPREC client (SRC) over UDP for the load benchmark: INVITE, ACK, BYE.

It sets up many two-stream G.711 recording sessions against one recorder and keeps just
enough SIP state for that: the INVITE client transaction's retransmissions (RFC 3261
17.1.1: T1 doubling, stopped by a provisional response, given up after 64*T1), the ACK
for every 2xx (retransmitted 200s get their ACK again), and BYE with retransmissions.
The answer's m-line ports are what the RTP sender needs. Everything is bounded:
set-up is paced and windowed, every transaction gives up after ``TIMEOUT`` seconds.

Not a general SIP stack (no TCP, no authentication, no route sets, no re-INVITE): the
peer is callvault on loopback. The media itself is sent by ``bench/sender.c`` (load) or
by ``bench/quality.py``, which also picks each call's codec (``MediaOffer``) and the
participants named in its metadata.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import cast

T1 = 0.5
T2 = 4.0
TIMEOUT = 64 * T1
BOUNDARY = "callvault-bench-boundary"

_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.M | re.I)
_CSEQ = re.compile(rb"^CSeq[ \t]*:[ \t]*(\d+)[ \t]+(\w+)", re.M | re.I)
_TO_TAG = re.compile(rb"^(?:To|t)[ \t]*:[^\r\n]*;[ \t]*tag=([^;>\s]+)", re.M | re.I)
_M_AUDIO = re.compile(rb"^m=audio (\d+) ", re.M)


@dataclass(frozen=True)
class MediaOffer:
    """The one payload type both m-lines offer (default: PCMU, what load.py sends)."""

    payload_type: int = 0
    rtpmap: str = "PCMU/8000"
    fmtp: str | None = None


PCMU = MediaOffer()

#: (AOR, display name) of the party sending stream label 1, then label 2.
Parties = tuple[tuple[str, str], tuple[str, str]]


@dataclass
class BenchCall:
    """One recording session as the client sees it."""

    index: int
    call_id: str
    from_tag: str
    invite: bytes = b""
    to_tag: str | None = None
    status: int | None = None
    ports: list[int] = field(default_factory=list)
    invited_at: float = 0.0
    answered_at: float | None = None
    invite_sends: int = 0
    bye_status: int | None = None
    bye_sends: int = 0
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    bye_done: asyncio.Event = field(default_factory=asyncio.Event)
    provisional: bool = False
    offer: MediaOffer = PCMU
    parties: Parties | None = None


def _metadata(index: int, session_id: str, parties: Parties | None = None) -> str:
    """RFC 7865 metadata: two participants, each sending one of the two streams."""
    (aor_a, name_a), (aor_b, name_b) = parties or (
        (f"sip:agent-{index}@pbx.test", f"Agent {index}"),
        (f"sip:+1555{index:07d}@carrier.test", "Customer"),
    )
    return "\r\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<recording xmlns="urn:ietf:params:xml:ns:recording:1">',
            "<datamode>complete</datamode>",
            f'<session session_id="{session_id}">',
            "<start-time>2026-01-01T00:00:00Z</start-time></session>",
            f'<participant participant_id="cA{index}"><nameID aor="{aor_a}">'
            f'<name xml:lang="en">{name_a}</name></nameID></participant>',
            f'<participant participant_id="cB{index}"><nameID aor="{aor_b}">'
            f'<name xml:lang="en">{name_b}</name></nameID></participant>',
            f'<stream stream_id="sA{index}" session_id="{session_id}"><label>1</label></stream>',
            f'<stream stream_id="sB{index}" session_id="{session_id}"><label>2</label></stream>',
            f'<participantstreamassoc participant_id="cA{index}"><send>sA{index}</send>'
            f"<recv>sB{index}</recv></participantstreamassoc>",
            f'<participantstreamassoc participant_id="cB{index}"><send>sB{index}</send>'
            f"<recv>sA{index}</recv></participantstreamassoc>",
            "</recording>",
        ]
    )


def _sdp(local_ip: str, media_port: int, offer: MediaOffer = PCMU) -> str:
    lines = ["v=0", f"o=SRC 4242 1 IN IP4 {local_ip}", "s=-", f"c=IN IP4 {local_ip}", "t=0 0"]
    pt = offer.payload_type
    for offset, label in ((0, "1"), (2, "2")):
        lines += [f"m=audio {media_port + offset} RTP/AVP {pt}", f"a=rtpmap:{pt} {offer.rtpmap}"]
        if offer.fmtp:
            lines.append(f"a=fmtp:{pt} {offer.fmtp}")
        lines += ["a=sendonly", f"a=label:{label}"]
    return "\r\n".join(lines) + "\r\n"


class SiprecClient(asyncio.DatagramProtocol):
    """The UDP client: owns one socket and every call's SIP state."""

    def __init__(self, server: tuple[str, int], media_port: int = 40000) -> None:
        self.server = server
        self.media_port = media_port
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self.calls: dict[str, BenchCall] = {}
        self.stray = 0
        self.requests: dict[str, int] = {}
        self.run_id = uuid.uuid4().hex[:8]

    # -- asyncio ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's and asyncio's UDP transports do not all subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = (host, port)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status = _STATUS.match(data)
        call_id = _CALL_ID.search(data)
        cseq = _CSEQ.search(data)
        if status is None or call_id is None or cseq is None:
            # A request from the server (a BYE for a call whose 200 was never ACKed,
            # say): counted, not answered; or garbage.
            method = data.split(b" ", 1)[0][:16].decode(errors="replace")
            self.requests[method] = self.requests.get(method, 0) + 1
            return
        call = self.calls.get(call_id.group(1).decode())
        if call is None:
            self.stray += 1
            return
        code = int(status.group(1))
        method = cseq.group(2).upper()
        if method == b"INVITE":
            self._on_invite_response(call, code, data)
        elif method == b"BYE" and code >= 200:
            call.bye_status = code
            call.bye_done.set()

    def _on_invite_response(self, call: BenchCall, code: int, data: bytes) -> None:
        if code < 200:
            call.provisional = True
            return
        tag = _TO_TAG.search(data)
        if call.status is None:
            call.status = code
            call.answered_at = time.monotonic()
            if tag:
                call.to_tag = tag.group(1).decode()
            if 200 <= code < 300:
                body = data.split(b"\r\n\r\n", 1)[-1]
                call.ports = [int(p) for p in _M_AUDIO.findall(body)]
            call.answered.set()
        if 200 <= code < 300:
            self._send(self._ack(call))  # also for each retransmitted 200
        # A non-2xx final response is ACKed by the transaction (same branch); the server
        # stops retransmitting it when it sees that ACK.
        elif code >= 300:
            self._send(self._ack_error(call))

    # -- messages ---------------------------------------------------------------------
    def _via(self, branch: str) -> str:
        return f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch=z9hG4bK{branch};rport"

    def _common(self, call: BenchCall, cseq: int, method: str, to_tag: str | None) -> list[str]:
        host, port = self.server
        to = f"To: <sip:srs@{host}:{port}>" + (f";tag={to_tag}" if to_tag else "")
        return [
            f"From: <sip:src@{self.local[0]}:{self.local[1]}>;tag={call.from_tag}",
            to,
            f"Call-ID: {call.call_id}",
            f"CSeq: {cseq} {method}",
            "Max-Forwards: 70",
        ]

    def _request_line(self, method: str) -> str:
        return f"{method} sip:srs@{self.server[0]}:{self.server[1]} SIP/2.0"

    def build_invite(self, call: BenchCall) -> bytes:
        session_id = base64.b64encode(uuid.uuid4().bytes).decode()
        body = "\r\n".join(
            [
                f"--{BOUNDARY}",
                "Content-Type: application/sdp",
                "",
                _sdp(self.local[0], self.media_port, call.offer),
                f"--{BOUNDARY}",
                "Content-Type: application/rs-metadata+xml",
                "Content-Disposition: recording-session",
                "",
                _metadata(call.index, session_id, call.parties),
                f"--{BOUNDARY}--",
                "",
            ]
        ).encode()
        head = [
            self._request_line("INVITE"),
            self._via(f"-{self.run_id}-{call.index}-i"),
            *self._common(call, 1, "INVITE", None),
            f"Contact: <sip:src@{self.local[0]}:{self.local[1]}>;+sip.src",
            "Require: siprec",
            "User-Agent: callvault-bench",
            f"Content-Type: multipart/mixed;boundary={BOUNDARY}",
            f"Content-Length: {len(body)}",
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def _ack(self, call: BenchCall) -> bytes:
        head = [
            self._request_line("ACK"),
            self._via(f"-{self.run_id}-{call.index}-a"),
            *self._common(call, 1, "ACK", call.to_tag),
            "Content-Length: 0",
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode()

    def _ack_error(self, call: BenchCall) -> bytes:
        head = [
            self._request_line("ACK"),
            self._via(f"-{self.run_id}-{call.index}-i"),
            *self._common(call, 1, "ACK", call.to_tag),
            "Content-Length: 0",
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode()

    def _bye(self, call: BenchCall) -> bytes:
        head = [
            self._request_line("BYE"),
            self._via(f"-{self.run_id}-{call.index}-b"),
            *self._common(call, 2, "BYE", call.to_tag),
            "Content-Length: 0",
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode()

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    # -- transactions -------------------------------------------------------------------
    def new_call(
        self, index: int, *, offer: MediaOffer = PCMU, parties: Parties | None = None
    ) -> BenchCall:
        call = BenchCall(index, f"bench-{self.run_id}-{index}@127.0.0.1", f"t{index}x{self.run_id}")
        call.offer, call.parties = offer, parties
        call.invite = self.build_invite(call)
        self.calls[call.call_id] = call
        return call

    async def invite(self, call: BenchCall) -> BenchCall:
        """Send the INVITE, retransmit until a response (RFC 3261 timer A/B)."""
        call.invited_at = time.monotonic()
        deadline = call.invited_at + TIMEOUT
        interval = T1
        while time.monotonic() < deadline:
            if not call.provisional:
                self._send(call.invite)
                call.invite_sends += 1
            wait = min(interval, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(call.answered.wait(), wait)
                return call
            except TimeoutError:
                interval = interval * 2 if not call.provisional else T2
        return call

    async def bye(self, call: BenchCall) -> BenchCall:
        """BYE with non-INVITE retransmissions (timer E, capped at T2; timer F)."""
        if call.to_tag is None or call.status is None or not 200 <= call.status < 300:
            return call
        message = self._bye(call)
        deadline = time.monotonic() + TIMEOUT
        interval = T1
        while time.monotonic() < deadline:
            self._send(message)
            call.bye_sends += 1
            wait = min(interval, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(call.bye_done.wait(), wait)
                return call
            except TimeoutError:
                interval = min(interval * 2, T2)
        return call


async def open_client(server: tuple[str, int]) -> SiprecClient:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: SiprecClient(server), local_addr=("127.0.0.1", 0)
    )
    return protocol


async def paced(
    calls: list[BenchCall],
    action: str,
    client: SiprecClient,
    rate: float,
    window: int,
) -> list[BenchCall]:
    """Run ``action`` ("invite" or "bye") for every call: at most ``rate`` starts per
    second and at most ``window`` transactions outstanding (as SIPp's ``-r`` and ``-l``),
    so a server slower than ``rate`` sets calls up at its own pace instead of timing out.
    """
    start = time.monotonic()
    slots = asyncio.Semaphore(window)
    run = client.invite if action == "invite" else client.bye

    async def one(call: BenchCall) -> BenchCall:
        try:
            return await run(call)
        finally:
            slots.release()

    tasks: list[asyncio.Task[BenchCall]] = []
    for n, call in enumerate(calls):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        tasks.append(asyncio.create_task(one(call)))
    return list(await asyncio.gather(*tasks))
