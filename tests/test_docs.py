"""The README documents every setting, CLI command and HTTP route (STYLE rule 10)."""

from __future__ import annotations

import click
import pytest

from callvault.cli import main
from callvault.config import SETTINGS
from callvault.server.http import Readiness
from tests.corpus import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str) -> list[str]:
    found: list[str] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
        else:
            found.append(path)
    return found


@pytest.mark.parametrize("setting", [s.name for s in SETTINGS])
def test_every_setting_is_in_the_settings_table(setting: str) -> None:
    assert f"| `{setting}` |" in README


@pytest.mark.parametrize("command", _commands(main, "callvault"))
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"`{command}" in README


def _routes() -> list[str]:
    """Every method and path the server answers: the web app's routers and the operator's."""
    from fastapi.routing import APIRoute

    from callvault.server.http import health_router
    from callvault.web import api, pages

    health = health_router(lambda: Readiness(True, {}), dict)
    found = []
    for router in (health, *api.ROUTERS, *pages.ROUTERS):
        for route in router.routes:
            if isinstance(route, APIRoute):
                found += [f"{method} {route.path}" for method in sorted(route.methods - {"HEAD"})]
    return found


@pytest.mark.parametrize("route", _routes())
def test_every_http_route_is_documented(route: str) -> None:
    assert f"| `{route}` |" in README


def test_the_operators_routes_are_there() -> None:
    assert {"GET /healthz", "GET /readyz", "GET /metrics"} <= set(_routes())


def test_setting_help_is_written() -> None:
    for setting in SETTINGS:
        assert setting.help.endswith((".", ")")), setting.name
