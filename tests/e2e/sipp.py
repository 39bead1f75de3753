"""SIPp as the Session Recording Client: scenarios built from steps, run against a server.

SIPp (Debian's ``sip-tester``) sends the SIP; ``play_pcap_audio`` plays G.711 A-law to
the first m-line of the answer. The message trace is read back so a test can find the
ports of the other streams and send their media itself.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import ServerProcess, free_port

SIPP = "sipp"
PCAP_ALAW = "/usr/share/sip-tester/g711a.pcap"
BOUNDARY = "callvault-test-boundary"


def metadata_xml(
    *,
    session_id: str = "c2Vzc2lvbjE=",
    group_id: str | None = None,
    participants: tuple[tuple[str, str, str], ...] = (
        ("cA==", "sip:agent-2001@pbx.example.com", "Agent 2001"),
        ("cB==", "sip:+15550100@carrier.example.net", "Customer"),
    ),
    labels: tuple[str, ...] = ("1", "2"),
    datamode: str = "complete",
) -> str:
    """RFC 7865 metadata: participant i sends the stream labelled labels[i]."""
    stream_ids = [f"s{label}" for label in labels]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<recording xmlns="urn:ietf:params:xml:ns:recording:1">',
        f"<datamode>{datamode}</datamode>",
    ]
    if group_id:
        lines.append(
            f'<group group_id="{group_id}"><associate-time>2026-01-01T00:00:00Z'
            "</associate-time></group>"
        )
    lines.append(f'<session session_id="{session_id}">')
    if group_id:
        lines.append(f"<group-ref>{group_id}</group-ref>")
    lines.append("<start-time>2026-01-01T00:00:00Z</start-time></session>")
    for pid, aor, name in participants:
        lines.append(
            f'<participant participant_id="{pid}"><nameID aor="{aor}">'
            f'<name xml:lang="en">{name}</name></nameID></participant>'
        )
    for sid, label in zip(stream_ids, labels, strict=True):
        lines.append(
            f'<stream stream_id="{sid}" session_id="{session_id}"><label>{label}</label></stream>'
        )
    for index, (pid, _, _) in enumerate(participants):
        send = stream_ids[index] if index < len(stream_ids) else None
        recv = [s for s in stream_ids if s != send]
        inner = (f"<send>{send}</send>" if send else "") + "".join(
            f"<recv>{r}</recv>" for r in recv
        )
        lines.append(
            f'<participantstreamassoc participant_id="{pid}">{inner}</participantstreamassoc>'
        )
    lines.append("</recording>")
    return "\n".join(lines)


def sdp(
    labels: tuple[str, ...] = ("1", "2"),
    *,
    direction: str = "sendonly",
    hold_address: bool = False,
    payload_type: int = 8,
    version: int = 1,
    directions: dict[str, str] | None = None,
) -> str:
    encoding = {0: "PCMU/8000", 8: "PCMA/8000"}[payload_type]
    address = "0.0.0.0" if hold_address else "[media_ip]"
    lines = [
        "v=0",
        f"o=SRC 4242 {version} IN IP4 [local_ip]",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
    ]
    for index, label in enumerate(labels):
        port = "[media_port]" if index == 0 else f"[media_port+{2 * index}]"
        lines += [
            f"m=audio {port} RTP/AVP {payload_type} 101",
            f"a=rtpmap:{payload_type} {encoding}",
            "a=rtpmap:101 telephone-event/8000",
            f"a={(directions or {}).get(label, direction)}",
            f"a=label:{label}",
        ]
    return "\n".join(lines)


def multipart(sdp_text: str, metadata: str | None) -> tuple[str, str]:
    if metadata is None:
        return "application/sdp", sdp_text
    body = "\n".join(
        [
            f"--{BOUNDARY}",
            "Content-Type: application/sdp",
            "",
            sdp_text,
            f"--{BOUNDARY}",
            "Content-Type: application/rs-metadata+xml",
            "Content-Disposition: recording-session",
            "",
            metadata,
            f"--{BOUNDARY}--",
        ]
    )
    return f"multipart/mixed;boundary={BOUNDARY}", body


_HEAD = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>{to_tag}
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:src@[local_ip]:[local_port];transport=[transport]>;+sip.src
Max-Forwards: 70
User-Agent: SIPp SRC
{extra}"""


def _request(
    method: str,
    cseq: int,
    *,
    body: tuple[str, str] | None = None,
    in_dialog: bool = False,
    extra: str = "",
) -> str:
    head = _HEAD.format(
        to_tag="[peer_tag_param]" if in_dialog else "",
        cseq=cseq,
        method=method,
        extra=extra,
    ).rstrip("\n")
    start = f"{method} sip:srs@[remote_ip]:[remote_port] SIP/2.0"
    if body is None:
        return f"{start}\n{head}\nContent-Length: 0\n\n"
    content_type, text = body
    return f"{start}\n{head}\nContent-Type: {content_type}\nContent-Length: [len]\n\n{text}\n"


def _send(message: str, *, retrans: bool = False) -> str:
    attributes = ' retrans="500"' if retrans else ""
    return f"<send{attributes}><![CDATA[\n{message}]]></send>"


@dataclass
class Scenario:
    """A SIPREC client's call as a list of SIPp steps."""

    steps: list[str]

    @classmethod
    def call(
        cls,
        invite_body: tuple[str, str],
        *,
        hold_ms: int = 6000,
        play: bool = True,
        reinvites: tuple[tuple[int, tuple[str, str]], ...] = (),
        bye: bool = True,
        extra_headers: str = "Require: siprec\n",
    ) -> Scenario:
        """INVITE, ACK, (play), then per re-INVITE: pause, re-INVITE, ACK; pause; BYE."""
        steps = [
            _send(_request("INVITE", 1, body=invite_body, extra=extra_headers), retrans=True),
            '<recv response="100" optional="true"/>',
            '<recv response="200" rrs="true"/>',
            f"<send><![CDATA[\n{_request('ACK', 1, in_dialog=True)}]]></send>",
        ]
        if play:
            steps.append(f'<nop><action><exec play_pcap_audio="{PCAP_ALAW}"/></action></nop>')
        cseq = 2
        for wait_ms, body in reinvites:
            steps.append(f'<pause milliseconds="{wait_ms}"/>')
            steps.append(_send(_request("INVITE", cseq, body=body, in_dialog=True), retrans=True))
            steps.append('<recv response="100" optional="true"/>')
            steps.append('<recv response="200"/>')
            steps.append(_send(_request("ACK", cseq, in_dialog=True)))
            cseq += 1
        steps.append(f'<pause milliseconds="{hold_ms}"/>')
        if bye:
            steps.append(
                f'<send retrans="500"><![CDATA[\n{_request("BYE", cseq, in_dialog=True)}]]></send>'
            )
            steps.append('<recv response="200"/>')
        return cls(steps)

    def xml(self) -> str:
        body = "\n".join(self.steps)
        head = '<?xml version="1.0" encoding="ISO-8859-1"?>'
        return f'{head}\n<scenario name="callvault">\n{body}\n</scenario>\n'


@dataclass
class SippRun:
    process: subprocess.Popen[bytes]
    workdir: Path
    media_port: int

    @property
    def messages(self) -> Path:
        return self.workdir / "messages.log"

    def wait(self, timeout: float = 120.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def output(self) -> str:
        parts = []
        for name in ("stdout.log", "errors.log", "messages.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"== {name}\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)

    def answer_ports(self, timeout: float = 30.0) -> list[int]:
        """The m-line ports of the SRS's first 200 OK with SDP, once SIPp logged it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.messages.exists():
                text = self.messages.read_text(errors="replace")
                match = re.search(r"SIP/2\.0 200 OK.*?(?=\n-{10,}|\Z)", text, re.S)
                if match and "m=audio" in match.group(0):
                    return [int(p) for p in re.findall(r"m=audio (\d+)", match.group(0))]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no 200 OK with SDP from the SRS\n{self.output()}")


def run_sipp(
    scenario: Scenario,
    server: ServerProcess,
    workdir: Path,
    *,
    transport: str = "u1",
) -> SippRun:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "scenario.xml"
    path.write_text(scenario.xml())
    media_port = _free_even_udp_port()
    command = [
        SIPP,
        "-sf",
        str(path),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(media_port),
        "-cp",
        str(free_port(socket.SOCK_DGRAM, also_tcp=False)),
        "-t",
        transport,
        "-nostdin",
        "-trace_msg",
        "-message_file",
        str(workdir / "messages.log"),
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        "-timeout",
        "120s",
        "-timeout_error",
        f"127.0.0.1:{server.sip_port}",
    ]
    stdout = (workdir / "stdout.log").open("wb")
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT, cwd=workdir)
    stdout.close()
    return SippRun(process, workdir, media_port)


def _free_even_udp_port() -> int:
    for _ in range(200):
        port = free_port(socket.SOCK_DGRAM, also_tcp=False)
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no even UDP port")
