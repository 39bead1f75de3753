"""Bad input and vanished peers: a clear answer, and nothing already received is lost.

- garbage on a media port is counted and dropped, the real packets still recorded;
- an SRC that vanishes (no RTP, no BYE) is ended by the RTP inactivity timeout with a
  BYE from the recorder, while a long hold (every stream paused) is not;
- a full disk turns new sessions away with 503 and says so on /readyz;
- an XML bomb in the metadata gets 400 and the server carries on.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sip_client import Reply, SipClient

BOUNDARY = "bad-input"


def _sdp(labels: tuple[str, ...] = ("1", "2"), *, direction: str = "sendonly") -> str:
    lines = ["v=0", "o=SRC 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    for index, label in enumerate(labels):
        lines += [
            f"m=audio {41000 + 2 * index} RTP/AVP 8",
            "a=rtpmap:8 PCMA/8000",
            f"a={direction}",
            f"a=label:{label}",
        ]
    return "\r\n".join(lines) + "\r\n"


class Dialog:
    """Just enough of a SIPREC client to open, re-INVITE and close one session."""

    def __init__(self, server: ServerProcess, call_id: str) -> None:
        self.client = SipClient(server.sip_port, "udp")
        self.call_id = call_id
        self.cseq = 1
        self.to_tag: str | None = None
        self.local = self.client.sock.getsockname()

    def request(self, method: str, body: str = "", content_type: str = "application/sdp") -> None:
        to = "<sip:srs@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        head = [
            f"{method} sip:srs@127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch=z9hG4bK{self.call_id}"
            f"{method}{self.cseq}",
            f"From: <sip:src@127.0.0.1>;tag=src-{self.call_id}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:src@{self.local[0]}:{self.local[1]}>;+sip.src",
            "Max-Forwards: 70",
        ]
        if body:
            head.append(f"Content-Type: {content_type}")
        head.append(f"Content-Length: {len(body.encode())}")
        self.client.send(("\r\n".join(head) + "\r\n\r\n" + body).encode())

    def invite(self, body: str, content_type: str = "application/sdp") -> Reply:
        self.request("INVITE", body, content_type)
        reply = self.client.final()
        assert reply is not None
        if reply.status == 200:
            self.to_tag = reply.to_tag
            self.request("ACK")
        self.cseq += 1
        return reply

    def bye(self) -> Reply | None:
        self.request("BYE")
        self.cseq += 1
        return self.client.final()


def _segment(server: ServerProcess, call_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for call in server.calls():
        for segment in call["segments"]:
            if segment["sip_call_id"] == call_id:
                return call, segment
    raise AssertionError(f"no segment {call_id}")


def test_garbage_on_a_media_port_is_counted_and_dropped(
    server: ServerProcess, tmp_path: Path
) -> None:
    dialog = Dialog(server, "garbage-1")
    reply = dialog.invite(_sdp())
    assert reply.status == 200
    port = int(reply.m_lines()[0]["port"])  # type: ignore[arg-type]
    sender = RtpSender(("127.0.0.1", port), seconds=1.0)
    sender.start()
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    garbage = [
        b"",  # empty datagram
        b"\x80",  # one byte
        b"\x80" + os.urandom(10),  # shorter than an RTP header
        b"\xff" + os.urandom(499),  # version 3
        b"\x00" * 40,  # version 0
        b"GET / HTTP/1.1\r\n\r\n",  # not RTP at all
    ]
    for datagram in garbage:
        junk.sendto(datagram, ("127.0.0.1", port))
    junk.close()
    sender.join()
    time.sleep(0.3)
    bye = dialog.bye()
    assert bye is not None and bye.status == 200

    def recorded(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (c for c in calls if c["recordings"] and c["recordings"][0]["state"] == "ready"), None
        )

    call = server.wait_for(recorded, what="the recording")
    stream = next(s for s in call["streams"] if s["label"] == "1")
    assert stream["packets"] == sender.sent
    assert stream["garbage"] == len(garbage)


def test_rtp_timeout_ends_a_vanished_session_but_hold_does_not(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_env={"CALLVAULT_RTP_INACTIVITY_TIMEOUT": "2"}
    ).start()
    try:
        held = Dialog(server, "held-1")
        assert held.invite(_sdp()).status == 200
        assert held.invite(_sdp(direction="inactive")).status == 200  # hold everything
        vanished = Dialog(server, "vanished-1")
        assert vanished.invite(_sdp()).status == 200

        # The vanished SRC gets a BYE from the recorder after ~2 s of silence.
        bye = vanished.client.receive_datagram(timeout=20)
        assert bye is not None
        assert bye.startswith(b"BYE "), bye
        assert b"Call-ID: vanished-1" in bye
        _, segment = _segment(server, "vanished-1")
        assert segment["end_reason"] == "rtp_timeout"

        time.sleep(3)  # the held session outlives the timeout several times over
        _, segment = _segment(server, "held-1")
        assert segment["state"] == "active"
        assert held.invite(_sdp()).status == 200  # resume
        final = held.bye()
        assert final is not None and final.status == 200
        _, segment = _segment(server, "held-1")
        assert segment["end_reason"] == "bye"
    finally:
        server.stop()


def test_full_disk_refuses_new_sessions_with_503(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_env={"CALLVAULT_CAPTURE_MIN_FREE_MB": str(2**40)}
    ).start()
    try:
        reply = Dialog(server, "full-disk").invite(_sdp())
        assert reply.status == 503
        assert reply.header("Retry-After") is not None
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/readyz", timeout=5)
            raise AssertionError("readyz should say 503")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
    finally:
        server.stop()


def test_xml_bomb_gets_400_and_the_server_carries_on(server: ServerProcess) -> None:
    bomb = (
        '<?xml version="1.0"?>\r\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 10)
        )
        + ']>\r\n<recording xmlns="urn:ietf:params:xml:ns:recording:1">&lol9;</recording>'
    )
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{_sdp()}"
        f"--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\n"
        f"Content-Disposition: recording-session\r\n\r\n{bomb}\r\n--{BOUNDARY}--\r\n"
    )
    reply = Dialog(server, "bomb-1").invite(body, f"multipart/mixed;boundary={BOUNDARY}")
    assert reply.status == 400
    assert "DTD" in reply.reason or "entit" in reply.reason
    assert Dialog(server, "after-bomb").invite(_sdp()).status == 200


def test_invite_without_sdp_gets_an_offer_and_the_ack_answers(server: ServerProcess) -> None:
    """RFC 7866 6.1.1: an SRC may send metadata only; the SRS offers in its 200."""
    metadata = (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        '<recording xmlns="urn:ietf:params:xml:ns:recording:1">'
        "<datamode>complete</datamode>"
        '<session session_id="b2ZmZXJsZXNz"></session>'
        '<participant participant_id="cDE="><nameID aor="sip:alice@example.com"/></participant>'
        '<stream stream_id="c3Q=" session_id="b2ZmZXJsZXNz"><label>main</label></stream>'
        '<participantstreamassoc participant_id="cDE="><send>c3Q=</send>'
        "</participantstreamassoc></recording>\r\n"
    )
    dialog = Dialog(server, "offerless-1")
    dialog.request("INVITE", metadata, "application/rs-metadata+xml")
    offer = dialog.client.final()
    assert offer is not None and offer.status == 200
    m_lines = offer.m_lines()
    assert [m["label"] for m in m_lines] == ["main"]
    assert m_lines[0]["direction"] == "recvonly"
    assert "8" in str(m_lines[0]["formats"]).split()  # PCMA is among what we offer
    dialog.to_tag = offer.to_tag
    answer = _sdp(("main",))
    dialog.request("ACK", answer)
    dialog.cseq += 1
    sender = RtpSender(("127.0.0.1", int(m_lines[0]["port"])), seconds=1.0)  # type: ignore[arg-type]
    sender.start()
    sender.join()
    time.sleep(0.3)
    bye = dialog.bye()
    assert bye is not None and bye.status == 200

    def recorded(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (
                c
                for c in calls
                if any(s["sip_call_id"] == "offerless-1" for s in c["segments"])
                and c["recordings"]
                and c["recordings"][0]["state"] in ("ready", "failed")
            ),
            None,
        )

    call = server.wait_for(recorded, what="the offerless call's recording")
    stream = call["streams"][0]
    assert stream["codec"] == "PCMA"  # from the SRC's answer in the ACK
    assert stream["packets"] == sender.sent
    assert call["recordings"][0]["state"] == "ready"
    assert call["participants"] == [{"aor": "sip:alice@example.com", "name": None}]
