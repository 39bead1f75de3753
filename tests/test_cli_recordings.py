"""`callvault recordings remake` and `callvault calls stitch`, as an operator runs them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from callvault.db import Database
from callvault.db.models import Recording
from callvault.recording.store import create_segment, end_segment
from tests.cli_support import drop_callvault_environment, migrated_database, run
from tests.media import payloads
from tests.recording.golden import (
    RECORDER,
    SBC,
    START,
    captured_session,
    decode_file,
    peak,
    tone_packets,
    two_tones,
)
from tests.recording.helpers import new_segment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_callvault_environment(monkeypatch)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data: Path) -> Database:
    return migrated_database(data)


def _recordings(data: Path) -> list[dict[str, object]]:
    result = run(data, "calls", "list", "--json")
    assert result.exit_code == 0, result.output
    return [r for call in json.loads(result.stdout) for r in call["recordings"]]


def test_remake_makes_it_again_in_the_format_set_since(data: Path, db: Database) -> None:
    recording_id, _ = captured_session(db)
    two_tones(data)
    assert run(data, "recordings", "remake", str(recording_id)).exit_code == 0
    (first,) = _recordings(data)
    assert (first["state"], first["format"]) == ("ready", "ogg")
    assert (data / str(first["path"])).exists()

    assert run(data, "settings", "set", "recording.format", "mp3").exit_code == 0
    result = run(data, "recordings", "remake", str(recording_id))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"recording {recording_id}: ready\n"
    (again,) = _recordings(data)
    assert (again["id"], again["format"], again["codec"]) == (recording_id, "mp3", "mp3")
    assert str(again["file_name"]).endswith(".mp3")
    assert not (data / str(first["path"])).exists()  # the old Ogg file is gone
    _codec, rate, pcm = decode_file(data / str(again["path"]))
    assert peak(pcm[0, int(0.8 * rate) : int(2.3 * rate)], rate) == pytest.approx(500, abs=8)


def test_remake_of_an_unknown_recording_fails(data: Path, db: Database) -> None:
    result = run(data, "recordings", "remake", "99")
    assert result.exit_code == 1
    assert "recording 99: skipped" in result.output


def test_stitch_on_demand(data: Path, db: Database) -> None:
    # Two legs of one call; stitching by policy is off, so only the operator asks for it.
    assert run(data, "settings", "set", "recording.stitch", "never").exit_code == 0
    first, _ = captured_session(db)
    new = new_segment("cisco_cube_2streams_gtd.sip", started_at=START + 4.0, first_port=30004)
    new = dataclasses.replace(new, capture_path="captures/second.pcap")
    ids = db.write(lambda s: create_segment(s, new))
    second = db.write(lambda s: end_segment(s, ids.segment_id, "bye", START + 7.0, []))
    two_tones(data)
    payloads.write_capture(
        data / "captures" / "second.pcap",
        [(SBC, (RECORDER, 30004), tone_packets(700, t0=START + 4.5, ssrc=3))],
    )
    for recording_id in (first, second):
        assert run(data, "recordings", "remake", str(recording_id)).exit_code == 0
    assert sorted(r["kind"] for r in _recordings(data)) == ["segment", "segment"]

    call_id = db.read(lambda s: s.get_one(Recording, first).call_id)
    result = run(data, "calls", "stitch", str(call_id))
    assert result.exit_code == 0, result.output
    stitched = [r for r in _recordings(data) if r["kind"] == "call"]
    assert len(stitched) == 1 and stitched[0]["state"] == "ready"
    assert stitched[0]["duration_s"] == 7.0
    assert run(data, "calls", "stitch", "12345").exit_code == 1  # no such call
