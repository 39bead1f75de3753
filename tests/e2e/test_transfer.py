"""Transfers: new metadata mid-session, and a new session that joins the same call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import ServerProcess
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp

AGENT = ("cA==", "sip:agent-2001@pbx.example.com", "Agent 2001")
CUSTOMER = ("cB==", "sip:+15550100@carrier.example.net", "Customer")
SECOND_AGENT = ("cC==", "sip:agent-2002@pbx.example.com", "Agent 2002")


def test_reinvite_with_new_metadata_updates_participants(
    server: ServerProcess, tmp_path: Path
) -> None:
    transferred = multipart(
        sdp(("1", "2"), version=2), metadata_xml(participants=(SECOND_AGENT, CUSTOMER))
    )
    scenario = Scenario.call(
        multipart(sdp(("1", "2")), metadata_xml(participants=(AGENT, CUSTOMER))),
        play=False,
        reinvites=((1000, transferred),),
        hold_ms=1000,
    )
    sipp = run_sipp(scenario, server, tmp_path / "sipp")
    assert sipp.wait() == 0, sipp.output()

    def ended(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next((c for c in calls if c["ended_at"]), None)

    call = server.wait_for(ended, what="the call to end")
    assert {p["aor"] for p in call["participants"]} == {AGENT[1], CUSTOMER[1], SECOND_AGENT[1]}
    stream_1 = next(s for s in call["streams"] if s["label"] == "1")
    # The agent who sends stream 1 changed with the transfer; both are on record.
    assert set(stream_1["sent_by"]) == {AGENT[1], SECOND_AGENT[1]}
    assert len(call["segments"]) == 1


def test_sessions_sharing_a_group_id_are_one_call(server: ServerProcess, tmp_path: Path) -> None:
    group = "Z3JvdXAtdHJhbnNmZXI="
    first = Scenario.call(
        multipart(
            sdp(),
            metadata_xml(group_id=group, session_id="c2Vzcy0x", participants=(AGENT, CUSTOMER)),
        ),
        play=False,
        hold_ms=500,
    )
    second = Scenario.call(
        multipart(
            sdp(),
            metadata_xml(
                group_id=group, session_id="c2Vzcy0y", participants=(SECOND_AGENT, CUSTOMER)
            ),
        ),
        play=False,
        hold_ms=500,
    )
    for index, scenario in enumerate((first, second)):
        sipp = run_sipp(scenario, server, tmp_path / f"sipp{index}")
        assert sipp.wait() == 0, sipp.output()

    def two_segments(calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        ended = [c for c in calls if c["ended_at"] and len(c["segments"]) == 2]
        return calls if ended else None

    calls = server.wait_for(two_segments, what="one call with two segments")
    assert len(calls) == 1
    call = calls[0]
    assert [s["state"] for s in call["segments"]] == ["captured", "captured"]
    assert {p["aor"] for p in call["participants"]} == {AGENT[1], CUSTOMER[1], SECOND_AGENT[1]}

    def stitched(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
        recordings = calls[0]["recordings"] if calls else []
        done = all(r["state"] == "ready" for r in recordings)
        return calls[0] if done and len(recordings) == 3 else None

    call = server.wait_for(stitched, what="both legs and the stitched call recording ready")
    kinds = sorted(r["kind"] for r in call["recordings"])
    assert kinds == ["call", "segment", "segment"]
    whole = next(r for r in call["recordings"] if r["kind"] == "call")
    assert whole["segment_id"] is None
    # The stitched file spans the call: from the first leg's start to the second's end.
    assert abs(whole["duration_s"] - call["duration_s"]) < 0.05
    assert {p for c in whole["channel_map"] for p in c["participants"]} == {
        AGENT[1],
        CUSTOMER[1],
        SECOND_AGENT[1],
    }
