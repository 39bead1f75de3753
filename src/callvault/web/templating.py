"""Jinja2 rendering for the pages: one environment, autoescaped, with what every page
shows (who is logged in, the CSRF token its forms carry, the time zone to show times in).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from callvault.web.principal import Principal

__all__ = ["TEMPLATES", "local_time", "render"]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def local_time(value: datetime | None, zone: str = "UTC", fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An aware time shown in the viewer's time zone."""
    if value is None:
        return ""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    return value.astimezone(tz).strftime(fmt)


TEMPLATES.env.filters["local_time"] = local_time


def render(
    request: Request, name: str, who: Principal | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``name``; a request from the page navigation script gets ``<main>`` only."""
    partial = request.headers.get("x-callvault-partial") == "1"
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "who": who,
            "csrf_token": who.csrf_token if who else "",
            "tz": who.timezone if who else "UTC",
            "partial": partial,
            **context,
        },
        status_code=status_code,
    )
