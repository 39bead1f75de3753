"""``callvault users add|passwd|list``: people who log in to the web app and the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from callvault.cli.common import DATA_HELP, cli_settings

GROUPS_HELP = "Member groups, comma-separated (created on first use)."


def _database(data: str | None, config: str | None) -> Any:
    from callvault.db import Database

    settings = cli_settings(data, config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = (
        Database(settings.database_url)
        if settings.database_url
        else Database.for_data_dir(settings.data_dir)
    )
    database.migrate()  # a server that never ran has no tables yet
    return database


def _write(data: str | None, config: str | None, work: Any) -> Any:
    database = _database(data, config)
    try:
        return database.write(work)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        database.dispose()


@click.group()
def users() -> None:
    """Users of the web app and the API."""


@users.command("add")
@click.option("--username", help="Login name (the extension can be the login too).")
@click.option("--password", help="Initial password (at least 8 characters).")
@click.option("--extension", help="Extension: a login, and how the user's calls are found.")
@click.option("--name", "display_name", help="Display name.")
@click.option("--email", help="E-mail address.")
@click.option("--timezone", help="Time zone the user sees times in (IANA, default UTC).")
@click.option("--role", type=click.Choice(["user", "supervisor", "admin"]), default="user")
@click.option(
    "--scope",
    type=click.Choice(["own", "primary_group", "member_groups", "all"]),
    default="own",
    help="Calls the user may play besides their own.",
)
@click.option("--primary-group", help="Primary group (created on first use).")
@click.option("--groups", help=GROUPS_HELP)
@click.option(
    "--address", "addresses", multiple=True, help="Another AOR or line that is this user."
)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def users_add(**options: Any) -> None:
    """Add a user."""
    from callvault.web.people import UserFields, create_user, user_json

    if not options["username"] and not options["extension"]:
        raise click.UsageError("give --username, --extension or both")
    fields = UserFields(
        username=options["username"],
        extension=options["extension"],
        display_name=options["display_name"],
        email=options["email"],
        timezone=options["timezone"],
        role=options["role"],
        scope=options["scope"],
        primary_group=options["primary_group"],
        groups=tuple((options["groups"] or "").split(",")) if options["groups"] else None,
        addresses=tuple(options["addresses"]) or None,
    )
    made = _write(
        options["data"],
        options["config"],
        lambda s: user_json(s, create_user(s, fields, options["password"])),
    )
    click.echo(f"added user {made['id']} ({made['username'] or made['extension']})")


@users.command("passwd")
@click.argument("login")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def users_passwd(login: str, password: str, data: str | None, config: str | None) -> None:
    """Set LOGIN's password (username or extension); ends the user's sessions."""
    from callvault.web.auth import find_user
    from callvault.web.people import set_password

    def work(session: Any) -> int:
        user = find_user(session, login)
        if user is None:
            raise ValueError(f"no user with the login {login!r}")
        return set_password(session, user, password, datetime.now(UTC))

    ended = _write(data, config, work)
    click.echo(f"password of {login} changed; {ended} session(s) ended")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file.")
def users_list(as_json: bool, data: str | None, config: str | None) -> None:
    """List users."""
    from callvault.web.people import users_json

    database = _database(data, config)
    try:
        rows = database.read(users_json)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':>4}  {'USERNAME':16} {'EXT':8} {'ROLE':10} {'SCOPE':14} GROUPS")
    for row in rows:
        groups = ", ".join(filter(None, [row["primary_group"], *row["groups"]]))
        click.echo(
            f"{row['id']:>4}  {row['username'] or '':16} {row['extension'] or '':8} "
            f"{row['role']:10} {row['scope']:14} {groups}"
            + ("" if row["active"] else "  (inactive)")
        )
