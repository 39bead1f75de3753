"""Server-rendered pages (Jinja2, plain CSS, a little vanilla JavaScript, no CDN).

Every page extends ``templates/base.html``: the navigation and the docked player live
there, outside the ``<main>`` that page navigation swaps, so playback goes on while the
user moves between pages (REQUIREMENTS D6).
"""

from __future__ import annotations

from fastapi import APIRouter

from callvault.web.pages import (
    account,
    admin_audit,
    admin_keys,
    admin_settings,
    admin_users,
    auth,
    calls,
    share,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    calls.router,
    account.router,
    admin_users.router,
    admin_audit.router,
    admin_keys.router,
    admin_settings.router,
    share.router,
)
