"""Recording turned off (T1, W12) against a real `callvault serve`, with SIPp as the SRC.

The administrator turns recording off while the server runs. The next SIPREC session is
still answered (the SRC must not fail the call) but keeps metadata only: every stream
answered with port 0 and ``a=inactive``, also on re-INVITE, no capture file, no
recording. The recording made before stays.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def _ended(calls: list[dict[str, Any]], count: int) -> list[dict[str, Any]] | None:
    done = [c for c in calls if c["state"] == "ended"]
    if len(done) < count:
        return None
    if any(r["state"] not in ("ready", "failed") for c in done for r in c["recordings"]):
        return None
    return sorted(done, key=lambda c: c["id"])


def test_with_recording_off_a_call_keeps_metadata_only(
    server: ServerProcess, tmp_path: Path
) -> None:
    # A call recorded while recording is on.
    first = run_sipp(
        Scenario.call(multipart(sdp(("1", "2")), metadata_xml()), hold_ms=1500),
        server,
        tmp_path / "first",
    )
    assert all(port > 0 for port in first.answer_ports())
    assert first.wait() == 0, first.output()
    (recorded,) = server.wait_for(lambda calls: _ended(calls, 1), what="the first recording")
    (made,) = recorded["recordings"]
    assert made["state"] == "ready"

    turned = server.cli("settings", "set", "recording.enabled", "false")
    assert turned.returncode == 0, turned.stderr

    reinvite = multipart(sdp(("1", "2"), version=2), metadata_xml(session_id="c2Vzc2lvbjI="))
    second = run_sipp(
        Scenario.call(
            multipart(sdp(("1", "2")), metadata_xml(session_id="c2Vzc2lvbjI=")),
            play=False,
            reinvites=((500, reinvite),),
            hold_ms=500,
        ),
        server,
        tmp_path / "second",
    )
    assert second.answer_ports() == [0, 0]
    assert second.wait() == 0, second.output()
    answers = re.findall(
        r"SIP/2\.0 200 OK.*?(?=\n-{10,}|\Z)", second.messages.read_text(errors="replace"), re.S
    )
    with_sdp = [a for a in answers if "m=audio" in a]
    assert len(with_sdp) == 2  # the INVITE's and the re-INVITE's
    for answer in with_sdp:
        assert re.findall(r"m=audio (\d+)", answer) == ["0", "0"]
        assert answer.count("a=inactive") == 2 and "a=recvonly" not in answer

    calls = server.wait_for(lambda calls: _ended(calls, 2), what="the second call to end")
    before, after = calls
    assert before["id"] == recorded["id"]
    assert [r["state"] for r in before["recordings"]] == ["ready"]  # W12: kept
    assert (server.data_dir / made["path"]).exists()

    assert after["recordings"] == [] and after["streams"] == []
    (segment,) = after["segments"]
    assert (segment["state"], segment["capture_path"], segment["end_reason"]) == (
        "metadata_only",
        None,
        "bye",
    )
    assert {p["aor"] for p in after["participants"]} == {
        "sip:agent-2001@pbx.example.com",
        "sip:+15550100@carrier.example.net",
    }
    captures = sorted((server.data_dir / "captures").rglob("*.pcap"))
    assert len(captures) == 1  # the first call's only
