"""Layouts and the left-channel rule: which party lands in which file and channel."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import selectinload

from callvault.db import Database
from callvault.db.models import Segment, Stream, StreamParticipant
from callvault.recording.layout import (
    Party,
    is_internal,
    left_party,
    parties_of,
    phone_number,
    plan_outputs,
    user_part,
)
from callvault.recording.store import create_segment
from tests.recording.helpers import new_segment

AGENT = Party("p-agent", "sip:2001@pbx.example.com", "Anna Agent", True, 1, (11,))
CUSTOMER = Party("p-cust", "sip:+48221234567@carrier.example", None, False, 0, (10,))
SUPERVISOR = Party("p-sup", "sip:2002@pbx.example.com", "Sam", True, 2, (12,))


def _names(plan: object) -> list[tuple[str, list[str]]]:
    return [(c.name, [p.key for p in c.parties]) for c in plan.channels]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("aor", "user", "patterns", "expected"),
    [
        ("sip:2001@pbx", None, (), True),  # a short extension
        ("sip:+48221234567@carrier", None, (), False),
        ("sip:alice@example.com", None, (), False),
        ("sip:alice@example.com", "alice@broadworks", (), True),  # a platform user
        ("sip:Alice@Example.com", None, ("sip:*@example.com",), True),
        ("tel:+15551234567", None, (), False),
        (None, None, (), False),
    ],
)
def test_internal_parties(
    aor: str | None, user: str | None, patterns: tuple[str, ...], expected: bool
) -> None:
    assert is_internal(aor, user, patterns) is expected


def test_user_part_strips_scheme_host_and_parameters() -> None:
    assert user_part("<sip:+4822123@host;user=phone>") == "+4822123"
    assert user_part("tel:+1555;phone-context=x") == "+1555"
    assert user_part("sips:bob@example.com") == "bob"
    assert user_part(None) is None


def test_stereo_puts_the_agent_left_by_default() -> None:
    (plan,) = plan_outputs([CUSTOMER, AGENT], "stereo", "internal")
    assert _names(plan) == [("left", ["p-agent"]), ("right", ["p-cust"])]
    assert plan.rule_note is None


def test_caller_rule_puts_the_first_listed_party_left() -> None:
    (plan,) = plan_outputs([AGENT, CUSTOMER], "stereo", "caller")
    assert _names(plan) == [("left", ["p-cust"]), ("right", ["p-agent"])]


def test_aor_rule_and_its_fallback() -> None:
    (plan,) = plan_outputs([CUSTOMER, AGENT], "stereo", "aor:sip:+48*")
    assert _names(plan)[0] == ("left", ["p-cust"])
    (plan,) = plan_outputs([CUSTOMER, AGENT], "stereo", "aor:sip:9999@*")
    assert _names(plan)[0] == ("left", ["p-agent"])
    assert plan.rule_note is not None and "matched no party" in plan.rule_note


def test_stereo_with_three_parties_keeps_everyone_else_right() -> None:
    (plan,) = plan_outputs([CUSTOMER, AGENT, SUPERVISOR], "stereo", "internal")
    assert _names(plan) == [("left", ["p-agent"]), ("right", ["p-cust", "p-sup"])]
    assert plan.channels[1].stream_ids == (10, 12)


def test_conference_puts_internal_left_and_external_right() -> None:
    (plan,) = plan_outputs([CUSTOMER, AGENT, SUPERVISOR], "conference", "caller")
    assert _names(plan) == [("left", ["p-agent", "p-sup"]), ("right", ["p-cust"])]


def test_conference_of_agents_only_falls_back_to_the_rule() -> None:
    (plan,) = plan_outputs([AGENT, SUPERVISOR], "conference", "internal")
    assert _names(plan) == [("left", ["p-agent"]), ("right", ["p-sup"])]


def test_mono_and_single_party_give_one_channel() -> None:
    (plan,) = plan_outputs([CUSTOMER, AGENT], "mono", "internal")
    assert _names(plan) == [("mono", ["p-cust", "p-agent"])]
    (plan,) = plan_outputs([AGENT], "stereo", "internal")
    assert _names(plan) == [("mono", ["p-agent"])]


def test_separate_gives_one_file_per_party() -> None:
    plans = plan_outputs([AGENT, CUSTOMER], "separate", "internal")
    assert [(p.participant_key, _names(p)) for p in plans] == [
        ("p-cust", [("mono", ["p-cust"])]),
        ("p-agent", [("mono", ["p-agent"])]),
    ]


def test_no_parties_no_files_and_unknown_layout_refused() -> None:
    assert plan_outputs([], "stereo", "internal") == []
    with pytest.raises(ValueError, match="unknown layout 'quad'"):
        plan_outputs([AGENT], "quad", "internal")
    with pytest.raises(ValueError):
        left_party([], "internal")


def test_phone_number_is_the_external_party() -> None:
    assert phone_number([AGENT, CUSTOMER]) == "+48221234567"
    assert phone_number([AGENT, SUPERVISOR], AGENT) == "2002"
    assert phone_number([]) is None


def _segment(database: Database, corpus: str) -> Segment:
    ids = database.write(lambda s: create_segment(s, new_segment(corpus)))
    options = [
        selectinload(Segment.participants),
        selectinload(Segment.streams)
        .selectinload(Stream.participant_links)
        .selectinload(StreamParticipant.participant),
    ]
    return database.read(lambda s: s.get_one(Segment, ids.segment_id, options=options))


def test_parties_from_a_cisco_segment(database: Database) -> None:
    segment = _segment(database, "cisco_cube_2streams_gtd.sip")
    parties = parties_of(segment)
    assert [(p.aor, p.internal, len(p.stream_ids)) for p in parties] == [
        ("sip:7301@35.162.237.204", True, 1),
        ("sip:7300@35.162.237.204", True, 1),
    ]
    (plan,) = plan_outputs(parties, "stereo", "internal")
    labels = {s.id: s.label for s in segment.streams}
    assert [[labels[i] for i in c.stream_ids] for c in plan.channels] == [["1"], ["2"]]


def test_a_mixed_stream_is_one_party(database: Database) -> None:
    segment = _segment(database, "broadworks_mixed_mono_initial_invite.sip")
    parties = parties_of(segment)
    assert len(parties) == 1
    (plan,) = plan_outputs(parties, "stereo", "internal")
    assert [c.name for c in plan.channels] == ["mono"]
