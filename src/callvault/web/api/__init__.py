"""REST API under ``/api/v1``: one module per resource, each with a ``router``.

Errors are RFC 9457 problem details (``callvault.web.errors``). Everything the web
pages do goes through the same permission checks (``callvault.web.permissions``).
"""

from __future__ import annotations

from fastapi import APIRouter

from callvault.web.api import (
    audit,
    calls,
    groups,
    keys,
    pause,
    recordings,
    retention,
    session,
    settings,
    shares,
    tokens,
    users,
    webhooks,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    calls.router,
    pause.router,
    recordings.router,
    shares.router,
    users.router,
    groups.router,
    tokens.router,
    webhooks.router,
    audit.router,
    keys.router,
    settings.router,
    retention.router,
)
