"""An agent pauses the recording of a call in progress and resumes it (REQUIREMENTS T3),
against a real `callvault serve` with SIPp as the SRC and the API as the call page uses it.

Nothing the SRC sends while paused is captured, the stretch is stored as a paused
interval with reason ``user`` on every stream, and the finished recording marks it. The
administrator must turn it on first (``recording.user_pause``), and only those who may
see the call can pause it.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp

PASSWORD = "a long enough password"


def _login(server: ServerProcess, username: str) -> httpx.Client:
    web = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}")
    reply = web.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    web.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return web


def _active(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((c for c in calls if c["state"] == "active" and c["streams"]), None)


def _finished(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    for call in calls:
        if call["recordings"] and call["recordings"][0]["state"] in ("ready", "failed"):
            return call
    return None


def test_an_agent_pauses_and_resumes_the_recording_of_a_live_call(
    server: ServerProcess, tmp_path: Path
) -> None:
    for username, role in (("boss", "admin"), ("stranger", "user")):
        added = server.cli("users", "add", "--username", username, "--password", PASSWORD,
                           "--role", role)  # fmt: skip
        assert added.returncode == 0, added.stderr
    boss, stranger = _login(server, "boss"), _login(server, "stranger")

    scenario = Scenario.call(multipart(sdp(("1", "2")), metadata_xml()), play=False, hold_ms=6000)
    sipp = run_sipp(scenario, server, tmp_path / "sipp")
    ports = sipp.answer_ports()
    senders = [
        RtpSender(("127.0.0.1", ports[0]), frequency=500.0, seconds=6.0, ssrc=1),
        RtpSender(("127.0.0.1", ports[1]), frequency=1500.0, seconds=6.0, ssrc=2),
    ]
    for sender in senders:
        sender.start()
    call = server.wait_for(_active, what="the call in progress")
    pause, resume = f"/api/v1/calls/{call['id']}/pause", f"/api/v1/calls/{call['id']}/resume"

    refused = boss.post(pause)
    assert refused.status_code == 409 and "recording.user_pause" in refused.json()["detail"]
    turned = server.cli("settings", "set", "recording.user_pause", "true")
    assert turned.returncode == 0, turned.stderr
    assert stranger.post(pause).status_code == 404  # not a call they may see

    time.sleep(1.0)
    paused_at = time.time()
    paused = boss.post(pause)
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"call_id": call["id"], "paused": True, "sessions": 1}
    page = boss.get(f"/calls/{call['id']}")
    assert f'data-pause-toggle="{resume}"' in page.text and "Recording paused" in page.text
    time.sleep(2.0)
    resumed = boss.post(resume)
    resumed_at = time.time()
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert f'data-pause-toggle="{pause}"' in boss.get(f"/calls/{call['id']}").text

    assert sipp.wait() == 0, sipp.output()
    for sender in senders:
        sender.join()
    done = server.wait_for(_finished, what="the finalized recording")
    streams = sorted(done["streams"], key=lambda s: s["label"])
    for stream, sender in zip(streams, senders, strict=True):
        (interval,) = stream["paused"]
        assert interval["reason"] == "user" and interval["ended_at"] is not None
        length = (
            datetime.fromisoformat(interval["ended_at"])
            - datetime.fromisoformat(interval["started_at"])
        ).total_seconds()
        assert 0 < length <= resumed_at - paused_at
        # The packets of the pause were dropped, not captured nor counted as loss.
        missing = sender.sent - stream["packets"]
        assert abs(missing - 50 * length) <= 10, (missing, length)
        assert stream["lost"] == 0
    recording = done["recordings"][0]
    assert recording["state"] == "ready"
    after = boss.post(pause)
    assert after.status_code == 409 and "not in progress" in after.json()["detail"]
    boss.close()
    stranger.close()
