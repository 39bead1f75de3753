"""The FastAPI application ``callvault serve`` runs on ``--http``.

OpenAPI at ``/api/v1/openapi.json`` with a docs page at ``/api/v1/docs`` (served from
this package: no CDN, the pages must work without internet), the REST API, the pages,
``/static`` and whatever extra routers the server adds (health, readiness, metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from callvault import __version__
from callvault.web import api, pages
from callvault.web.errors import install_error_handlers
from callvault.web.principal import WebContext

__all__ = ["STATIC_DIR", "create_web_app"]

STATIC_DIR = Path(__file__).parent / "static"


def create_web_app(ctx: WebContext, extra: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="callvault",
        version=__version__,
        description="Find, play and share call recordings. Errors are RFC 9457 problem "
        "details. Authenticate with the session cookie (POST /api/v1/session) or "
        "`Authorization: Bearer <token>`.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in (*extra, *api.ROUTERS, *pages.ROUTERS):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
