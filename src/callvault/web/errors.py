"""One error hierarchy for the web layer, rendered by one handler (STYLE rule 12).

Under ``/api`` an error is an RFC 9457 problem details document
(``application/problem+json``); on pages it is an HTML page, and ``Unauthorized``
sends the browser to the login page. A caller without permission for a call or a
recording gets ``NotFound``, never ``Forbidden`` (REQUIREMENTS D7: do not confirm that
a recording exists).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "WebError",
    "install_error_handlers",
]


class WebError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class BadRequest(WebError):
    status, title = 400, "Bad Request"


class Unauthorized(WebError):
    status, title = 401, "Unauthorized"


class Forbidden(WebError):
    status, title = 403, "Forbidden"


class NotFound(WebError):
    status, title = 404, "Not Found"


class Conflict(WebError):
    status, title = 409, "Conflict"


class TooManyRequests(WebError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(WebError):
    """Something we depend on (the S3 bucket) cannot be reached now; try again later."""

    status, title = 503, "Service Unavailable"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body["instance"] = request.url.path
    body.update(extra)
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _page(status: int, title: str, detail: str) -> HTMLResponse:
    # Kept dependency-free: the templates may be what failed.
    from html import escape

    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{status} {escape(title)} · callvault</title>"
        '<link rel=stylesheet href="/static/app.css">'
        f'<main class="error-page"><h1>{status} {escape(title)}</h1>'
        f"<p>{escape(detail)}</p><p><a href=/calls>Back to the calls</a></p></main></html>"
    )
    return HTMLResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Response:
        if _wants_json(request):
            return problem(exc.status, exc.title, exc.detail, request, **exc.extra)
        if isinstance(exc, Unauthorized):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return _page(exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        if _wants_json(request):
            return problem(422, "Unprocessable Content", detail, request, errors=errors)
        return _page(422, "Unprocessable Content", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        detail = str(exc.detail) if exc.detail else title
        if _wants_json(request):
            return problem(exc.status_code, title, detail, request)
        return _page(exc.status_code, title, detail)
