"""A SIPREC call over TCP (SIP and SDP over a stream connection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def test_call_over_tcp(server: ServerProcess, tmp_path: Path) -> None:
    scenario = Scenario.call(multipart(sdp(), metadata_xml()), play=False, hold_ms=2500)
    sipp = run_sipp(scenario, server, tmp_path / "sipp", transport="t1")
    ports = sipp.answer_ports()
    sender = RtpSender(("127.0.0.1", ports[0]), seconds=2.0)
    sender.start()
    assert sipp.wait() == 0, sipp.output()
    sender.join()

    def ready(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (c for c in calls if c["recordings"] and c["recordings"][0]["state"] == "ready"), None
        )

    call = server.wait_for(ready, what="a ready recording")
    assert call["segments"][0]["state"] == "captured"
    stream_1 = next(s for s in call["streams"] if s["label"] == "1")
    assert stream_1["packets"] == sender.sent == 100
