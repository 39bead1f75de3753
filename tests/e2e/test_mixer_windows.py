"""Mixer windows (REQUIREMENTS X6) on a running server, changed the way an admin would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def _recording(calls: list[dict[str, Any]], state: str, deferred: bool = False) -> Any:
    for call in calls:
        for recording in call["recordings"]:
            if recording["state"] == state and (recording["waiting_until"] or not deferred):
                return dict(recording)
    return None


def test_a_call_outside_the_window_waits_until_the_admin_opens_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    # A one-hour window starting three hours from now: the mixer may not run now.
    opens = datetime.now(UTC) + timedelta(hours=3)
    window = f"daily {opens:%H}:00-{(opens + timedelta(hours=1)):%H}:00"
    result = server.cli("settings", "set", "mixer.windows", window)
    assert result.returncode == 0, result.stderr

    sipp = run_sipp(
        Scenario.call(multipart(sdp(("1", "2")), metadata_xml()), hold_ms=2000),
        server,
        tmp_path / "sipp",
    )
    ports = sipp.answer_ports()
    sender = RtpSender(("127.0.0.1", ports[1]), frequency=1000.0, seconds=1.5)
    sender.start()
    assert sipp.wait() == 0, sipp.output()
    sender.join()

    # Finalize looked at it, found the mixer closed and left it waiting for the window.
    waiting = server.wait_for(lambda c: _recording(c, "waiting", True), what="a deferred one")
    expected = opens.replace(minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(waiting["waiting_until"].replace("Z", "+00:00")) == expected
    assert waiting["path"] is None

    # The administrator opens the mixer for good; the waiting recording is made.
    result = server.cli("settings", "set", "mixer.windows", "always")
    assert result.returncode == 0, result.stderr
    ready = server.wait_for(lambda c: _recording(c, "ready"), what="the recording made")
    assert ready["id"] == waiting["id"] and ready["waiting_until"] is None
    assert ready["format"] == "ogg" and ready["channels"] == 2
