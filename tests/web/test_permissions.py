"""Who sees which call (REQUIREMENTS D7, D8, D9): the rules of web/permissions.py.

Calls are made from real vendor INVITEs: Cisco (7301 calls 7300), Oracle (9000 and
1002), RFC 7865 (alice and bob). Users are matched to calls by extension or address.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db import CallGroup, Database, User
from callvault.db.models import Call
from callvault.recording.store import create_segment, end_segment
from callvault.web.errors import Forbidden, NotFound
from callvault.web.people import group_named
from callvault.web.permissions import visible_call, visible_calls
from callvault.web.principal import principal_of
from tests.recording.helpers import new_segment

START = 1_700_000_000.0


def _call(database: Database, corpus: str, start: float) -> int:
    new = dataclasses.replace(
        new_segment(corpus, started_at=start), capture_path=f"captures/{corpus}-{start}.pcap"
    )
    ids = database.write(lambda s: create_segment(s, new))
    database.write(lambda s: end_segment(s, ids.segment_id, "bye", start + 10, []))
    return ids.call_id


@pytest.fixture
def calls(database: Database) -> dict[str, int]:
    return {
        "cisco": _call(database, "cisco_cube_2streams_gtd.sip", START),
        "oracle": _call(database, "oracle_acme_sbc_2streams.sip", START + 100),
        "rfc": _call(database, "rfc7865_alice_bob_4streams_invite.sip", START + 200),
    }


def _seen(database: Database, user_id: int, token_scopes: frozenset[str] | None = None) -> set[int]:
    def query(s: Session) -> set[int]:
        user = s.get_one(User, user_id)
        who = principal_of(
            s, user, "token" if token_scopes else "session", token_scopes=token_scopes
        )
        return set(s.scalars(select(Call.id).where(visible_calls(s, who))))

    return database.read(query)


def test_own_scope_sees_the_calls_the_user_took_part_in(
    database: Database, calls: dict[str, int], make_user: Callable[..., int]
) -> None:
    by_extension = make_user(username="u7301", extension="7301")
    by_address = make_user(username="alice", addresses=["sip:alice@atlanta.com"])
    nobody = make_user(username="stranger", extension="5555")
    assert _seen(database, by_extension) == {calls["cisco"]}
    assert _seen(database, by_address) == {calls["rfc"]}
    assert _seen(database, nobody) == set()


def test_group_scopes_add_the_groups_calls(
    database: Database, calls: dict[str, int], make_user: Callable[..., int]
) -> None:
    make_user(username="agent1", extension="9000", primary_group="sales")
    make_user(username="agent2", extension="7300", groups=["support"])
    lead = make_user(username="lead", extension="1", scope="primary_group", primary_group="sales")
    manager = make_user(
        username="manager", scope="member_groups", primary_group="sales", groups=["support"]
    )
    assert _seen(database, lead) == {calls["oracle"]}
    assert _seen(database, manager) == {calls["oracle"], calls["cisco"]}


def test_a_call_tagged_with_a_group_is_the_groups(
    database: Database, calls: dict[str, int], make_user: Callable[..., int]
) -> None:
    lead = make_user(username="lead", scope="primary_group", primary_group="legal")

    def tag(s: Session) -> None:
        group = group_named(s, "legal")
        s.add(CallGroup(call_id=calls["rfc"], group_id=group.id))

    database.write(tag)
    assert _seen(database, lead) == {calls["rfc"]}


def test_admins_and_scope_all_see_everything(
    database: Database, calls: dict[str, int], make_user: Callable[..., int]
) -> None:
    admin = make_user(username="root", role="admin", scope="own")
    everyone = make_user(username="auditor", scope="all")
    assert _seen(database, admin) == _seen(database, everyone) == set(calls.values())


def test_a_foreign_call_does_not_exist_for_the_user(
    database: Database, calls: dict[str, int], make_user: Callable[..., int]
) -> None:
    user_id = make_user(username="u7301", extension="7301")

    def open_call(call_id: int, scopes: frozenset[str] | None = None) -> int:
        def query(s: Session) -> int:
            user = s.get_one(User, user_id)
            via = "token" if scopes is not None else "session"
            who = principal_of(s, user, via, token_scopes=scopes)
            return visible_call(s, who, call_id).id

        return database.read(query)

    assert open_call(calls["cisco"]) == calls["cisco"]
    with pytest.raises(NotFound, match="no call"):
        open_call(calls["oracle"])
    with pytest.raises(NotFound):
        open_call(999_999)
    with pytest.raises(Forbidden, match="calls:read"):
        open_call(calls["cisco"], frozenset({"recordings:read"}))
