"""Limits and addresses operators set: message size, advertised address, SRTP."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

from pylibsrtp import Policy, Session

from callvault.sdp.crypto import CryptoAttribute
from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import rtp_packet, tone_payloads
from tests.e2e.sip_client import SipClient
from tests.e2e.test_bad_input import Dialog, _sdp


def test_oversized_message_gets_513(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_env={"CALLVAULT_SIP_MAX_MESSAGE_SIZE": "1500"}
    ).start()
    try:
        dialog = Dialog(server, "too-big")
        padding = "a=x-padding:" + "y" * 1600 + "\r\n"
        reply = dialog.invite(_sdp() + padding)
        assert reply.status == 513
        assert Dialog(server, "small-enough").invite(_sdp()).status == 200
    finally:
        server.stop()


def test_too_many_headers_gets_400(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_env={"CALLVAULT_SIP_MAX_HEADERS": "20"}).start()
    try:
        client = SipClient(server.sip_port)
        headers = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(30))
        client.send(
            (
                "OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKmany\r\n"
                "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:srs@127.0.0.1>\r\n"
                f"Call-ID: many-headers\r\nCSeq: 1 OPTIONS\r\n{headers}Content-Length: 0\r\n\r\n"
            ).encode()
        )
        reply = client.final()
        client.close()
        assert reply is not None and reply.status == 400
        assert "header" in reply.reason.lower()
    finally:
        server.stop()


def test_advertise_address_is_what_the_sdp_and_contact_say(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_env={"CALLVAULT_SIP_ADVERTISE_ADDRESS": "203.0.113.7"}
    ).start()
    try:
        reply = Dialog(server, "nat-1").invite(_sdp())
        assert reply.status == 200
        assert b"c=IN IP4 203.0.113.7" in reply.body
        assert "203.0.113.7" in (reply.header("Contact") or "")
    finally:
        server.stop()


def test_srtp_stream_is_decrypted_into_the_capture(server: ServerProcess) -> None:
    key = bytes(range(30))
    crypto = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80", rand=lambda n: key[:n])
    sdp = (
        "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 41000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=label:1\r\n"
        f"a=crypto:{crypto}\r\n"
    )
    dialog = Dialog(server, "srtp-1")
    reply = dialog.invite(sdp)
    assert reply.status == 200
    assert b"RTP/SAVP" in reply.body and b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in reply.body
    port = int(reply.m_lines()[0]["port"])  # type: ignore[arg-type]

    policy = Policy(
        key=key,
        ssrc_type=Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    protector = Session(policy=policy)
    payloads = tone_payloads(700.0, 50, codec="PCMU")
    for index, payload in enumerate(payloads):
        plain = rtp_packet(0, index, 160 * index, 0xABCDEF, payload)
        dialog.client.sock.sendto(protector.protect(plain), ("127.0.0.1", port))
        time.sleep(0.02)
    dialog.client.sock.sendto(b"\x80\x00" + b"\x00" * 30, ("127.0.0.1", port))  # bad auth tag
    time.sleep(0.3)
    assert dialog.bye() is not None

    def recorded(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (
                c
                for c in calls
                if any(s["sip_call_id"] == "srtp-1" for s in c["segments"])
                and c["recordings"]
                and c["recordings"][0]["state"] in ("ready", "failed")
            ),
            None,
        )

    call = server.wait_for(recorded, what="the SRTP call's recording")
    stream = call["streams"][0]
    assert stream["packets"] == 50
    assert stream["garbage"] == 1  # the forged packet failed authentication
    assert call["recordings"][0]["state"] == "ready"
    # The capture holds plain RTP: the payloads are the G.711 bytes that were sent.
    capture = server.data_dir / call["segments"][0]["capture_path"]
    data = capture.read_bytes()
    assert payloads[10] in data and payloads[30] in data
    assert struct.pack("!I", 0xABCDEF) in data
