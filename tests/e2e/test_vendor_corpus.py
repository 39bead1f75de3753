"""Every vendor SIPREC message in the corpus, sent over UDP and TCP to a real server.

Initial INVITEs must get a 200 whose SDP answer keeps the m-line order and labels,
receives (``recvonly``; ``inactive`` where the offer was inactive) every audio stream
and refuses the rest with port 0; the participants of the metadata must then appear
on the call. In-dialog messages (re-INVITE, UPDATE) are sent inside a dialog opened
by an initial INVITE of the same Call-ID and From tag, and must get a 200 too.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.corpus import SIPREC_CORPUS
from tests.e2e.harness import ServerProcess
from tests.e2e.sip_client import Reply, SipClient

FILES = sorted(p.name for p in SIPREC_CORPUS.glob("*.sip"))
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("vendor") / "data").start()
    yield server
    server.stop()


def _split(message: bytes) -> tuple[list[str], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), body


def _join(lines: list[str], body: bytes) -> bytes:
    out = [line for line in lines if not re.match(r"(?i)^(content-length|l)\s*:", line)]
    out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode() + body


def _set_header(lines: list[str], name: str, value: str | None) -> list[str]:
    pattern = re.compile(rf"(?i)^{re.escape(name)}\s*:")
    kept = [line for line in lines if not pattern.match(line)]
    if value is not None:
        kept.insert(1, f"{name}: {value}")
    return kept


def _header(lines: list[str], name: str) -> str:
    pattern = re.compile(rf"(?i)^{re.escape(name)}\s*:(.*)$")
    for line in lines:
        match = pattern.match(line)
        if match:
            return match.group(1).strip()
    raise KeyError(name)


def _unfold(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def _activate(sdp: bytes) -> bytes:
    """The same streams, sending: what the call looked like before a hold or pause."""
    text = sdp.decode()
    text = text.replace("c=IN IP4 0.0.0.0", "c=IN IP4 127.0.0.1")
    text = re.sub(r"a=(inactive|recvonly)", "a=sendonly", text)
    text = re.sub(r"m=audio 0 ", "m=audio 40000 ", text)
    return text.encode()


def _generic_sdp(labels: list[str]) -> bytes:
    lines = ["v=0", "o=SRC 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    for index, label in enumerate(labels):
        lines += [f"m=audio {40000 + 2 * index} RTP/AVP 0", "a=sendonly", f"a=label:{label}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _sdp_part(lines: list[str], body: bytes) -> bytes | None:
    content_type = _header(lines, "Content-Type").lower()
    if content_type.startswith("application/sdp"):
        return body
    if content_type.startswith("multipart/"):
        match = re.search(
            rb"Content-Type:\s*application/sdp\s*\r?\n\r?\n(.*?)\r?\n--", body, re.S | re.I
        )
        if match:
            return match.group(1) + b"\r\n"
    return None


def _expected(name: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(
        (SIPREC_CORPUS / name.replace(".sip", ".json")).read_text()
    )["expected"]
    return expected


def _ack_and_bye(client: SipClient, lines: list[str], reply: Reply, cseq: int) -> None:
    to = f"{_header(lines, 'To').split(';tag=')[0]};tag={reply.to_tag}"
    for method, number in (("ACK", cseq), ("BYE", cseq + 1)):
        branch = f"z9hG4bK{method}{next(_counter)}"
        request = [
            f"{method} sip:srs@127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/{client.transport.upper()} 127.0.0.1:5999;branch={branch}",
            f"From: {_header(lines, 'From')}",
            f"To: {to}",
            f"Call-ID: {_header(lines, 'Call-ID')}",
            f"CSeq: {number} {method}",
            "Max-Forwards: 70",
        ]
        client.send(_join(request, b""))
    bye_reply = client.final()
    assert bye_reply is not None and bye_reply.status == 200


def _check_answer(reply: Reply, expected: dict[str, Any], offered_sdp: bytes | None) -> None:
    assert reply.status == 200, (reply.status, reply.reason)
    if offered_sdp is None:
        return
    m_lines = reply.m_lines()
    offered = re.findall(rb"^m=(\w+) (\d+)", offered_sdp, re.M)
    assert len(m_lines) == len(offered)
    offered_labels = [
        (m.group(1).decode() if (m := re.search(rb"a=label:(\S+)", chunk)) else None)
        for chunk in offered_sdp.split(b"\nm=")[1:]
    ]
    assert [m["label"] for m in m_lines] == offered_labels
    for m_line, (media, port) in zip(m_lines, offered, strict=True):
        if media == b"audio" and port != b"0":
            assert m_line["port"] != 0, m_line
            assert m_line["direction"] in ("recvonly", "inactive"), m_line
        else:
            assert m_line["port"] == 0, m_line


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("name", FILES)
def test_vendor_message_is_answered(
    corpus_server: ServerProcess, name: str, transport: str
) -> None:
    expected = _expected(name)
    raw = (SIPREC_CORPUS / name).read_bytes()
    lines, body = _split(raw)
    lines = _unfold(lines)
    call_id = f"{_header(lines, 'Call-ID')}-{transport}"
    lines = _set_header(lines, "Call-ID", call_id)
    # A fresh branch too: the same message sent again is, per RFC 3261 17.2.3, a
    # retransmission of the first whatever the transport, and would be absorbed.
    lines = [
        re.sub(r"branch=([^;,\s]+)", rf"branch=\1{transport}", line, count=1)
        if re.match(r"(?i)^(via|v)\s*:", line)
        else line
        for line in lines
    ]
    in_dialog = expected["method"] != "INVITE" or ";tag=" in _header(lines, "To")
    client = SipClient(corpus_server.sip_port, transport)
    try:
        cseq = int(_header(lines, "CSeq").split()[0])
        if in_dialog:
            sdp = _sdp_part(lines, body)
            labels = (
                [s["label"] for s in expected["metadata"]["declared_streams"]]
                if (expected["metadata"])
                else ["1"]
            )
            opening = _activate(sdp) if sdp is not None else _generic_sdp(labels)
            first = [
                re.sub(r"branch=([^;,\s]+)", r"branch=\1open", line, count=1)
                for line in ["INVITE sip:srs@127.0.0.1 SIP/2.0", *lines[1:]]
            ]
            first = _set_header(first, "To", _header(lines, "To").split(";tag=")[0])
            first = _set_header(first, "CSeq", f"{cseq - 1} INVITE")
            first = _set_header(first, "Content-Type", "application/sdp")
            first = _set_header(first, "Content-Disposition", None)
            client.send(_join(first, opening))
            opened = client.final()
            assert opened is not None and opened.status == 200, opened
            to = f"{_header(lines, 'To').split(';tag=')[0]};tag={opened.to_tag}"
            lines = _set_header(lines, "To", to)
            client.send(_join(lines, body))
            reply = client.final()
            assert reply is not None
            _check_answer(reply, expected, sdp)
            if sdp is not None:
                # The same ports stay in use across the re-INVITE.
                assert [m["port"] for m in reply.m_lines()] == [m["port"] for m in opened.m_lines()]
            _ack_and_bye(client, lines, opened, cseq + 1)
        else:
            client.send(_join(lines, body))
            reply = client.final()
            assert reply is not None, "no final reply"
            _check_answer(reply, expected, _sdp_part(lines, body))
            _ack_and_bye(client, lines, reply, cseq)
    finally:
        client.close()

    metadata = expected["metadata"]
    calls = corpus_server.calls()
    call = next(c for c in calls if any(s["sip_call_id"] == call_id for s in c["segments"]))
    if metadata:
        aors = {p["aor"] for p in metadata["participants"] if p["aor"]}
        assert aors <= {p["aor"] for p in call["participants"]}


def test_every_corpus_file_was_sent() -> None:
    assert len(FILES) == 25
