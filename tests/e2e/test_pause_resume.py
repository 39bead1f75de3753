"""Pause and resume by re-INVITE: nothing is captured while a stream is inactive."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def _finished(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    for call in calls:
        if call["recordings"] and call["recordings"][0]["state"] in ("ready", "failed"):
            return call
    return None


def test_inactive_stream_is_not_captured_and_interval_is_stored(
    server: ServerProcess, tmp_path: Path
) -> None:
    pause = multipart(sdp(("1", "2"), version=2, directions={"1": "inactive"}), None)
    resume = multipart(sdp(("1", "2"), version=3), None)
    scenario = Scenario.call(
        multipart(sdp(("1", "2")), metadata_xml()),
        play=False,
        reinvites=((2000, pause), (3000, resume)),
        hold_ms=2000,
    )
    sipp = run_sipp(scenario, server, tmp_path / "sipp")
    ports = sipp.answer_ports()
    senders = [
        RtpSender(("127.0.0.1", ports[0]), frequency=500.0, seconds=6.5, ssrc=1),
        RtpSender(("127.0.0.1", ports[1]), frequency=1500.0, seconds=6.5, ssrc=2),
    ]
    for sender in senders:
        sender.start()
    assert sipp.wait() == 0, sipp.output()
    for sender in senders:
        sender.join()

    call = server.wait_for(_finished, what="a finalized recording")
    streams = {s["label"]: s for s in call["streams"]}
    paused = streams["1"]["paused"]
    assert len(paused) == 1
    assert paused[0]["reason"] == "inactive"
    length = (
        datetime.fromisoformat(paused[0]["ended_at"])
        - datetime.fromisoformat(paused[0]["started_at"])
    ).total_seconds()
    assert 2.5 < length < 3.6
    assert streams["2"]["paused"] == []
    # Stream 2 got all its packets; stream 1 lost ~3 s (150 packets) to the pause,
    # and those are neither captured nor counted as network loss.
    assert streams["2"]["packets"] == senders[1].sent
    missing = senders[0].sent - streams["1"]["packets"]
    assert 120 <= missing <= 185, missing
    recording = call["recordings"][0]
    assert recording["state"] == "ready"
    assert recording["channels"] == 2


def test_hold_with_zero_address_pauses_all_streams(server: ServerProcess, tmp_path: Path) -> None:
    hold = multipart(sdp(("1", "2"), version=2, hold_address=True), None)
    resume = multipart(sdp(("1", "2"), version=3), None)
    scenario = Scenario.call(
        multipart(sdp(("1", "2")), metadata_xml()),
        play=False,
        reinvites=((1000, hold), (2000, resume)),
        hold_ms=1000,
    )
    sipp = run_sipp(scenario, server, tmp_path / "sipp")
    sipp.answer_ports()
    assert sipp.wait() == 0, sipp.output()
    call = server.wait_for(_finished, what="a finalized recording")
    for stream in call["streams"]:
        assert [p["reason"] for p in stream["paused"]] == ["hold"]
        assert stream["paused"][0]["ended_at"] is not None
