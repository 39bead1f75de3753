"""kill -9 mid-call: after a restart the session is closed as interrupted and finalized
from what was captured, losing at most about a second of audio."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def test_kill_9_mid_call_keeps_what_was_captured(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    sipp = None
    try:
        scenario = Scenario.call(multipart(sdp(), metadata_xml()), play=False, hold_ms=20000)
        sipp = run_sipp(scenario, server, tmp_path / "sipp")
        ports = sipp.answer_ports()
        sender = RtpSender(("127.0.0.1", ports[0]), seconds=10.0)
        sender.start()
        time.sleep(4.0)
        sent_before_kill = sender.sent
        server.kill9()
        sender.stop()
        sender.join()

        restarted = ServerProcess(
            server.data_dir,
            sip_port=server.sip_port,
            http_port=server.http_port,
            rtp_ports=server.rtp_ports,
        ).start()
        try:

            def finalized(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
                return next(
                    (
                        c
                        for c in calls
                        if c["recordings"] and c["recordings"][0]["state"] in ("ready", "failed")
                    ),
                    None,
                )

            call = restarted.wait_for(finalized, what="the interrupted call to be finalized")
        finally:
            restarted.stop()
    finally:
        server.stop()
        if sipp is not None and sipp.process.poll() is None:
            sipp.process.kill()
            sipp.process.wait()

    segment = call["segments"][0]
    assert segment["state"] == "interrupted"
    assert segment["end_reason"] == "crash_recovery"
    assert call["ended_at"] is not None
    stream_1 = next(s for s in call["streams"] if s["label"] == "1")
    # At 50 packets/s, losing at most one second means at most 50 packets missing.
    assert sent_before_kill - 50 <= stream_1["packets"] <= sent_before_kill + 5
    recording = call["recordings"][0]
    assert recording["state"] == "ready"
    assert recording["duration_s"] >= (stream_1["packets"] * 0.02) - 0.1
