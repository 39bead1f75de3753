"""``/admin/settings``: administrators see every setting and change the runtime ones.

Every runtime setting declared in :data:`callvault.config.SETTINGS` is a form field that
fits its parser (a select for choices, a checkbox for booleans, text otherwise) with its
help text, grouped by prefix; one Save button sends only what the administrator changed
(each field carries the value it was shown with), through the API's
:func:`~callvault.web.api.settings.change_settings`: the same checks, all or none, the
same audit lines. A refused save shows the page again with the message next to the
field and what was typed. Start-up settings are listed read-only with where their value
came from. The page also has the file-name template's live example and the storage
calculator (the template's few lines of JavaScript call the API for both).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from callvault.config import SETTINGS
from callvault.web.api.session import client_address
from callvault.web.api.settings import MAX_GB, change_settings, filename_example, reset
from callvault.web.errors import WebError
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.settings_view import MP3_WARNING, VORBIS_WARNING, Current, grouped
from callvault.web.storage_plan import PlanError, estimate_for
from callvault.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Principal, Depends(admin)]
DEFAULT_SIZE_GB = 250.0
# What a redirect may say: a fixed set, so no text is reflected from the URL.
NOTICES = {
    "saved": "Saved. The new values apply from the next recording.",
    "unchanged": "Nothing was changed.",
    "reset": "The setting was reset: its file, environment or default value applies again.",
}
TITLES = {
    "general": "General",
    "recording": "Recording",
    "mixer": "Mixer (when recordings are made)",
    "encryption": "Encryption",
    "storage": "Storage",
    "retention": "Retention",
    "web": "Web",
    "sip": "SIP",
    "rtp": "RTP",
    "http": "HTTP",
    "log": "Logging",
}
WAS = "was:"  # prefix of the hidden fields holding the value each field was shown with


def where(source: str) -> str:
    """Where a value came from, in words."""
    if source == "default":
        return "the default"
    if source == "database":
        return "saved here"
    if source == "command line":
        return "the command line"
    if source.startswith("CALLVAULT_"):
        return f"the environment ({source})"
    return f"the settings file {source}"


def _runtime_names() -> list[str]:
    return [setting.name for setting in SETTINGS if setting.runtime]


def _last(form: FormData, name: str) -> str | None:
    # A checkbox comes after a hidden "false" of the same name: the last value wins.
    values = [value for value in form.getlist(name) if isinstance(value, str)]
    return values[-1] if values else None


def _page(
    request: Request,
    ctx: WebContext,
    who: Principal,
    *,
    status_code: int = 200,
    typed: dict[str, str] | None = None,
    was: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    size_gb: float = DEFAULT_SIZE_GB,
    **extra: Any,
) -> HTMLResponse:
    now = ctx.database.read(lambda db: Current(db, ctx.settings))
    groups = grouped(now)
    shown_values = {
        item["name"]: item["value"] or "" for group in groups for item in group["settings"]
    }
    try:
        calculation = estimate_for(now.settings, size_gb, {})
        calculation_error = None
    except PlanError as exc:  # saved settings that disagree: the page says so above
        calculation, calculation_error = None, str(exc)
    template = str(now.settings["recording.filename_template"])
    try:
        example = filename_example(
            typed.get("recording.filename_template", template) if typed else template,
            now.settings["recording.timezone"],
            ctx.now(),
        )["example"]
    except WebError as exc:
        example = exc.detail
    return render(
        request,
        "admin_settings.html",
        who,
        status_code=status_code,
        runtime_groups=[
            {
                **group,
                "title": TITLES.get(group["name"], group["name"].capitalize()),
                "settings": [s for s in group["settings"] if s["runtime"]],
            }
            for group in groups
            if any(s["runtime"] for s in group["settings"])
        ],
        startup=[s for group in groups for s in group["settings"] if not s["runtime"]],
        form={**shown_values, **(typed or {})},
        was={**shown_values, **(was or {})},
        errors=errors or {},
        problem=now.problem,
        where=where,
        example=example,
        size_gb=size_gb,
        calculation=calculation,
        calculation_error=calculation_error,
        mp3_warning=MP3_WARNING,
        vorbis_warning=VORBIS_WARNING,
        notice=NOTICES.get(request.query_params.get("done", "")),
        **extra,
    )


def _field_errors(exc: WebError, asked: dict[str, str]) -> dict[str, str]:
    """The message next to each field it is about (a cross-setting rule: every field it
    names that was changed)."""
    named = [exc.extra["setting"]] if "setting" in exc.extra else exc.extra.get("settings", [])
    fields = [name for name in named if name in asked] or list(asked)
    return dict.fromkeys(fields, exc.detail)


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    ctx: Ctx,
    who: Admin,
    size_gb: Annotated[float, Query(gt=0, le=MAX_GB)] = DEFAULT_SIZE_GB,
) -> Response:
    return _page(request, ctx, who, size_gb=size_gb)


@router.post("/admin/settings", response_class=HTMLResponse)
async def settings_save(request: Request, ctx: Ctx, who: Admin) -> Response:
    form = await request.form()
    typed: dict[str, str] = {}
    was: dict[str, str] = {}
    for name in _runtime_names():
        value = _last(form, name)
        if value is None:
            continue  # not on the form this administrator saw
        typed[name] = value
        before = form.get(WAS + name)
        if isinstance(before, str):
            was[name] = before
    changes = {name: text for name, text in typed.items() if was.get(name) != text}
    if not changes:
        return RedirectResponse("/admin/settings?done=unchanged", status_code=303)
    try:
        change_settings(ctx, who, client_address(request), changes)
    except WebError as exc:
        errors = _field_errors(exc, changes)
        return _page(
            request,
            ctx,
            who,
            status_code=exc.status,
            typed=typed,
            was=was,
            errors=errors,
            error=f"Nothing was saved: see the message next to {', '.join(errors)}.",
        )
    return RedirectResponse("/admin/settings?done=saved", status_code=303)


@router.post("/admin/settings/{name}/reset", response_class=HTMLResponse)
def settings_reset(name: str, request: Request, ctx: Ctx, who: Admin) -> Response:
    try:
        reset(ctx, who, client_address(request), name)
    except WebError as exc:
        if exc.status == 404:
            raise
        return _page(
            request,
            ctx,
            who,
            status_code=exc.status,
            errors={name: exc.detail},
            error=f"{name} was not reset: {exc.detail}",
        )
    return RedirectResponse("/admin/settings?done=reset", status_code=303)
