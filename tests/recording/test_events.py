"""Events reach the webhook outbox in the transaction that makes them true."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from callvault.db import Database, Webhook, WebhookDelivery
from callvault.db.models import Call
from callvault.recording.events import emit
from callvault.recording.finalize import finalize_recording
from tests.recording.golden import captured_session, settings_for, two_tones


def _hook(database: Database, events: list[str]) -> None:
    database.write(lambda s: s.add(Webhook(url="http://127.0.0.1:9/x", secret="k", events=events)))


def _deliveries(database: Database) -> list[tuple[str, dict[str, object]]]:
    rows = database.read(
        lambda s: s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    )
    return [(row.event, row.payload) for row in rows]


def test_a_call_that_ends_is_announced_with_its_direction(database: Database) -> None:
    _hook(database, ["call.ended"])
    captured_session(database)  # Cisco CUBE: 7301 calls 7300, two extensions
    ((event, payload),) = _deliveries(database)
    assert event == "call.ended"
    call = payload["data"]["call"]  # type: ignore[index]
    assert call["direction"] == "internal" and call["duration_s"] == 3.0
    assert database.read(lambda s: s.scalars(select(Call.direction)).one()) == "internal"


def test_a_finished_recording_is_announced(database: Database, tmp_path: Path) -> None:
    _hook(database, ["recording.ready"])
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    assert _deliveries(database) == []  # not before the file exists
    finalize_recording(database, tmp_path, recording_id, settings=settings_for(tmp_path))
    ((event, payload),) = _deliveries(database)
    recording = payload["data"]["recording"]  # type: ignore[index]
    assert event == "recording.ready" and recording["id"] == recording_id
    assert recording["download_url"] == f"/api/v1/recordings/{recording_id}/download"


def test_webhooks_get_only_what_they_asked_for(database: Database) -> None:
    _hook(database, ["recording.deleted"])
    _hook(database, [])  # every event
    captured_session(database)
    assert [event for event, _ in _deliveries(database)] == ["call.ended"]
    with pytest.raises(ValueError, match=r"unknown event 'call\.started'"):
        database.write(lambda s: emit(s, "call.started", {}))
