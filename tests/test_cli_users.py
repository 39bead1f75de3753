"""``callvault users add|passwd|list`` as an operator uses them, on SQLite (``--data``)
and on PostgreSQL (``database.url`` from the environment)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.cli import main
from callvault.db import Database, User, WebSession
from callvault.db.accounts import Group
from callvault.web.auth import authenticate, new_session
from callvault.web.people import UserFields, update_user
from tests.cli_support import drop_callvault_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_callvault_environment(monkeypatch)
    # Still argon2id, at its lowest cost: these tests hash and check many passwords.
    monkeypatch.setattr("callvault.web.auth._hasher", PasswordHasher(1, 8, 1))


@pytest.fixture
def users(db_url: str, tmp_path: Path) -> CliRunner:
    """Runs ``callvault users ...`` on the test database (SQLite: the one in --data)."""
    env = {} if db_url.startswith("sqlite") else {"CALLVAULT_DATABASE_URL": db_url}
    return CliRunner(env=env)


def run(runner: CliRunner, tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(main, ["users", *args, "--data", str(tmp_path)], input=stdin)


def test_add_creates_groups_on_first_use_and_list_shows_the_user(
    users: CliRunner, tmp_path: Path, database: Database
) -> None:
    added = run(
        users,
        tmp_path,
        "add",
        "--username",
        "anna",
        "--password",
        "anna's password",
        "--extension",
        "2001",
        "--name",
        "Anna Nowak",
        "--role",
        "supervisor",
        "--scope",
        "member_groups",
        "--primary-group",
        "sales",
        "--groups",
        "support,night shift",
        "--address",
        "sip:anna@pbx.example.com",
    )
    assert (added.exit_code, added.stdout) == (0, "added user 1 (anna)\n"), added.output
    names = database.read(lambda s: sorted(s.scalars(select(Group.name))))
    assert names == ["night shift", "sales", "support"]
    # A second user joins the existing groups instead of making new ones.
    assert run(users, tmp_path, "add", "--extension", "2002", "--groups", "sales").exit_code == 0
    assert database.read(lambda s: len(s.scalars(select(Group)).all())) == 3

    listed = run(users, tmp_path, "list", "--json")
    assert listed.exit_code == 0
    anna, second = json.loads(listed.stdout)
    assert (anna["username"], anna["extension"], anna["display_name"]) == (
        "anna",
        "2001",
        "Anna Nowak",
    )
    assert (anna["role"], anna["scope"], anna["primary_group"]) == (
        "supervisor",
        "member_groups",
        "sales",
    )
    assert anna["groups"] == ["night shift", "support"]
    assert anna["addresses"] == ["sip:anna@pbx.example.com"]
    assert (second["username"], second["extension"], second["groups"]) == (None, "2002", ["sales"])
    assert second["has_password"] is False
    table = run(users, tmp_path, "list").stdout.splitlines()
    assert table[0].split() == ["ID", "USERNAME", "EXT", "ROLE", "SCOPE", "GROUPS"]
    assert table[1].split() == [
        "1",
        "anna",
        "2001",
        "supervisor",
        "member_groups",
        "sales,",
        "night",
        "shift,",
        "support",
    ]
    assert table[2].split() == ["2", "2002", "user", "own", "sales"]
    # The password works for a login, by username and by extension.
    now = datetime.now(UTC)
    for login in ("anna", "2001"):
        found = database.write(
            partial(authenticate, login=login, password="anna's password", now=now)
        )
        assert isinstance(found, User) and found.username == "anna"


def test_duplicates_and_bad_values_exit_with_code_2(users: CliRunner, tmp_path: Path) -> None:
    assert run(users, tmp_path, "add", "--username", "anna", "--extension", "2001").exit_code == 0
    cases = [
        (["--username", "Anna"], "Error: 'Anna' is already the login of another user\n"),
        (["--username", "bob", "--extension", "2001"], "'2001' is already the login"),
        (["--username", "bob", "--timezone", "Mars/Base"], "timezone 'Mars/Base'"),
        (["--username", "bob", "--password", "short"], "at least 8 characters"),
        (["--name", "Nobody"], "Error: give --username, --extension or both\n"),
        (["--username", "bob", "--role", "root"], "Invalid value for '--role'"),
    ]
    for args, message in cases:
        result = run(users, tmp_path, "add", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    listed = json.loads(run(users, tmp_path, "list", "--json").stdout)
    assert [row["username"] for row in listed] == ["anna"]


def test_passwd_sets_the_password_and_ends_the_sessions(
    users: CliRunner, tmp_path: Path, database: Database
) -> None:
    run(
        users,
        tmp_path,
        "add",
        "--username",
        "anna",
        "--extension",
        "2001",
        "--password",
        "old pass 1",
    )
    now = datetime.now(UTC)

    def open_session(s: Session) -> None:
        new_session(s, s.scalars(select(User)).one(), now, "192.0.2.1", "test")

    database.write(open_session)
    database.write(open_session)
    result = run(users, tmp_path, "passwd", "2001", "--password", "new pass 1")
    assert (result.exit_code, result.stdout) == (
        0,
        "password of 2001 changed; 2 session(s) ended\n",
    )
    assert database.read(lambda s: s.scalars(select(WebSession)).all()) == []
    assert isinstance(database.write(lambda s: authenticate(s, "anna", "new pass 1", now)), User)
    assert database.write(lambda s: authenticate(s, "anna", "old pass 1", now)) == (
        "wrong login or password"
    )
    # Asked for (twice) when not given on the command line.
    prompted = run(users, tmp_path, "passwd", "anna", stdin="third pass\nthird pass\n")
    assert prompted.exit_code == 0 and "password of anna changed" in prompted.stdout
    assert isinstance(database.write(lambda s: authenticate(s, "anna", "third pass", now)), User)


def test_passwd_refuses_unknown_logins_and_short_passwords(
    users: CliRunner, tmp_path: Path
) -> None:
    run(users, tmp_path, "add", "--username", "anna")
    unknown = run(users, tmp_path, "passwd", "nobody", "--password", "long enough")
    assert unknown.exit_code == 2
    assert unknown.stderr.endswith("\nError: no user with the login 'nobody'\n")
    short = run(users, tmp_path, "passwd", "anna", "--password", "short")
    assert short.exit_code == 2
    assert short.stderr.endswith("\nError: a password needs at least 8 characters\n")


def test_list_marks_inactive_users(users: CliRunner, tmp_path: Path, database: Database) -> None:
    run(users, tmp_path, "add", "--username", "anna")
    run(users, tmp_path, "add", "--username", "bob")
    database.write(
        lambda s: update_user(
            s, s.scalars(select(User).where(User.username == "bob")).one(), UserFields(active=False)
        )
    )
    lines = run(users, tmp_path, "list").stdout.splitlines()
    assert not lines[1].endswith("(inactive)") and lines[2].endswith("(inactive)")
