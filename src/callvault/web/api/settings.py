"""REST API: every setting for administrators, the file-name example and the storage
calculator (REQUIREMENTS T1-T12, A7).

Whatever :data:`callvault.config.SETTINGS` declares is listed, with its value, default,
source and help; nothing here names a setting it does not need to. *Runtime* settings
change here (several at once, all or none: the cross-setting rules of
:mod:`callvault.runtime_settings` see them together); *start-up* settings are shown with
the place their value came from and refused with a pointer to the settings file, since a
running server does not read them again. Every change is audited as ``settings.change``
with the old and the new value as text (secrets masked). How a setting is shown lives
in :mod:`callvault.web.settings_view`, the storage figures in
:mod:`callvault.web.storage_plan`. The admin page
(:mod:`callvault.web.pages.admin_settings`) calls the same functions.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.config import SETTINGS_BY_NAME, ConfigError, Setting
from callvault.recording.naming import FilenameTemplate
from callvault.runtime_settings import (
    DATABASE,
    known_setting,
    parse_value,
    reset_setting,
    set_settings,
)
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest, Conflict, NotFound
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.settings_view import Current, as_text, describe, grouped, shown
from callvault.web.storage_plan import PlanError, estimate_for

__all__ = [
    "MAX_GB",
    "SAMPLE_ID",
    "SAMPLE_NAME",
    "SAMPLE_PHONE",
    "change_settings",
    "filename_example",
    "reset",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["settings"])

Admin = Annotated[Principal, Depends(admin)]
Ctx = Annotated[WebContext, Depends(context)]
# Sample call of the file-name example (REQUIREMENTS T7's example, named after a queue).
SAMPLE_PHONE, SAMPLE_ID, SAMPLE_NAME = "123456789", "1542902923.24", "Support"
MAX_GB = 1e9  # an exabyte: beyond any disk or bucket


def _declared(name: str) -> Setting:
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None:
        raise NotFound(f"there is no setting {_safe(name)!r}")
    return setting


def _safe(text: str) -> str:
    """Text that a JSON answer can carry (lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _runtime(name: str) -> Setting:
    try:
        setting = known_setting(name)
    except ConfigError as exc:  # unknown: the message suggests a close name
        raise BadRequest(_safe(str(exc)), setting=_safe(name)) from None
    if not setting.runtime:
        raise BadRequest(
            f"{name} is a start-up setting: it is read when callvault starts, so it cannot "
            "be changed here. Set it in the settings file (callvault.toml in the data "
            f"directory), in {setting.env_var}, or with `callvault settings set {name} "
            "VALUE`, then restart callvault.",
            setting=name,
        )
    return setting


def _check(setting: Setting, text: str) -> None:
    if any(unicodedata.category(char) == "Cc" for char in text):
        # No setting needs them, and PostgreSQL cannot store NUL.
        raise BadRequest(
            f"{setting.name} = {_safe(text)!r} is not valid: control characters are not allowed",
            setting=setting.name,
            value=_safe(text),
        )
    try:
        parse_value(setting, text)
    except ConfigError as exc:
        raise BadRequest(_safe(str(exc)), setting=setting.name, value=_safe(text)) from None


def change_settings(
    ctx: WebContext, who: Principal, ip: str | None, values: Mapping[str, str]
) -> list[str]:
    """Validate and save runtime settings together (all or none); audit each change.

    A value equal to the one already saved is left alone. Returns the names changed.
    """
    if not values:
        raise BadRequest('no settings given: send {"values": {"name": "value", ...}}')
    for name, text in values.items():
        _check(_runtime(name), text)

    def save(db: Session) -> list[str]:
        before = Current(db, ctx.settings)
        changes = {
            name: text
            for name, text in values.items()
            if before.settings.sources[name] != DATABASE
            or name in before.invalid
            or before.text(name) != as_text(SETTINGS_BY_NAME[name].parse(text))
        }
        if not changes:
            return []
        try:
            set_settings(db, changes, updated_by=who.login, base=ctx.settings)
        except ConfigError as exc:
            message = str(exc)
            # The rule's own words follow "cannot set <the changes>: ".
            asked = ", ".join(f"{name} = {text!r}" for name, text in changes.items())
            rule = message.removeprefix(f"cannot set {asked}: ")
            named = [name for name in SETTINGS_BY_NAME if name in rule]
            raise BadRequest(_safe(message), settings=named) from None
        for name, text in changes.items():
            setting = SETTINGS_BY_NAME[name]
            record(
                db,
                who,
                "settings.change",
                target_type="setting",
                target_id=name,
                ip=ip,
                old=shown(setting, before.text(name)),
                new=shown(setting, text),
                old_source=before.settings.sources[name],
            )
        return list(changes)

    try:
        return ctx.database.write(save)
    except IntegrityError:  # two first saves of one setting at once (PostgreSQL)
        raise Conflict(
            "another administrator saved settings at the same moment: try again"
        ) from None


def reset(ctx: WebContext, who: Principal, ip: str | None, name: str) -> dict[str, Any]:
    """Forget the saved value of ``name``; the file, environment or default applies."""
    _declared(name)
    setting = _runtime(name)

    def forget(db: Session) -> dict[str, Any]:
        before = Current(db, ctx.settings)
        try:
            reset_setting(db, name, base=ctx.settings)
        except ConfigError as exc:
            raise Conflict(_safe(str(exc)), setting=name) from None
        after = Current(db, ctx.settings)
        if name in before.rows:
            record(
                db,
                who,
                "settings.change",
                target_type="setting",
                target_id=name,
                ip=ip,
                old=shown(setting, before.rows[name].value),
                new=shown(setting, after.text(name)),
                reset=True,
                new_source=after.settings.sources[name],
            )
        return describe(setting, after)

    return ctx.database.write(forget)


def filename_example(
    template: str, zone: ZoneInfo, now: datetime, name: str = SAMPLE_NAME
) -> dict[str, Any]:
    """What ``template`` makes of a sample call starting ``now``; 400 when invalid."""
    try:
        parsed = FilenameTemplate.parse(template)
    except ValueError as exc:
        raise BadRequest(
            _safe(f"recording.filename_template is not valid: {exc}"),
            setting="recording.filename_template",
        ) from None
    example = parsed.render(
        when=now, timezone=zone, phone_number=SAMPLE_PHONE, id=SAMPLE_ID, name=name
    )
    return {
        "template": str(parsed),
        "example": example,
        "timezone": str(zone),
        "sample": {
            "time": now.astimezone(zone).isoformat(),
            "phone_number": SAMPLE_PHONE,
            "id": SAMPLE_ID,
            "name": name,
        },
    }


class SettingsChange(BaseModel):
    values: dict[str, str | bool | int] = Field(
        description='runtime settings and their new values, e.g. {"recording.format": '
        '"mp3", "recording.mp3_bitrate": "48"}; saved together or not at all'
    )

    def texts(self) -> dict[str, str]:
        return {
            name: (str(value).lower() if isinstance(value, bool) else str(value))
            for name, value in self.values.items()
        }


def _read(ctx: WebContext) -> Current:
    return ctx.database.read(lambda db: Current(db, ctx.settings))


@router.get("/settings", summary="Every setting, grouped by prefix")
def list_settings(ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Every declared setting: value (text and parsed), default, source, runtime or
    start-up, help, type and allowed values; ``problem`` says when saved settings
    disagree."""
    now = _read(ctx)
    return {"groups": grouped(now), "problem": now.problem}


@router.put("/settings", summary="Change runtime settings (all or none)")
def put_settings(body: SettingsChange, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Save several runtime settings at once; 400 naming the setting, the value and why."""
    texts = body.texts()
    changed = change_settings(ctx, who, client_address(request), texts)
    now = _read(ctx)
    return {
        "changed": changed,
        "items": [describe(SETTINGS_BY_NAME[name], now) for name in texts],
        "problem": now.problem,
    }


@router.get("/settings/filename-example", summary="Live example of a file-name template")
def get_filename_example(
    ctx: Ctx,
    who: Admin,
    template: Annotated[str | None, Query(max_length=4096)] = None,
    timezone: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The file name a template gives a sample call now (phone 123456789, id
    1542902923.24, name Support) in the recording time zone; 400 with the error when the
    template or the time zone is invalid."""
    now = _read(ctx).settings
    text = template if template is not None else str(now["recording.filename_template"])
    zone = now["recording.timezone"]
    if timezone:
        try:
            zone = parse_value(SETTINGS_BY_NAME["recording.timezone"], timezone)
        except ConfigError as exc:
            raise BadRequest(_safe(str(exc)), setting="recording.timezone") from None
    return filename_example(text, zone, ctx.now())


@router.get("/settings/storage-calculator", summary="Hours of calls that fit in a size")
def get_storage_calculator(
    ctx: Ctx,
    who: Admin,
    size_gb: Annotated[float | None, Query(gt=0, le=MAX_GB, description="GB (10^9 bytes)")] = None,
    budget: Annotated[float | None, Query(gt=0, le=1e12, description="money per month")] = None,
    price_per_gb: Annotated[
        float | None, Query(gt=0, le=1e6, description="price of a GB-month, same currency")
    ] = None,
    format: Annotated[str | None, Query(max_length=16)] = None,
    codec: Annotated[str | None, Query(max_length=16)] = None,
    opus_bitrate: Annotated[str | None, Query(max_length=8)] = None,
    mp3_bitrate: Annotated[str | None, Query(max_length=8)] = None,
    vorbis_quality: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    """How many hours of two-party calls fit in ``size_gb`` (or what ``budget`` buys at
    ``price_per_gb`` a month) in the current format, or the one given, from measured
    bytes per minute; beside it the source system's rule of thumb (1 MB per 5 minutes)."""
    if size_gb is None:
        if budget is None or price_per_gb is None:
            raise BadRequest("give size_gb, or budget and price_per_gb")
        size_gb = budget / price_per_gb
        if size_gb > MAX_GB:
            raise BadRequest(f"budget / price_per_gb is more than {MAX_GB:.0e} GB")
    given = {
        "recording.format": format,
        "recording.codec": codec,
        "recording.opus_bitrate": opus_bitrate,
        "recording.mp3_bitrate": mp3_bitrate,
        "recording.vorbis_quality": vorbis_quality,
    }
    try:
        return estimate_for(_read(ctx).settings, size_gb, given)
    except PlanError as exc:
        raise BadRequest(_safe(str(exc)), setting=exc.setting) from None


@router.get("/settings/{name}", summary="One setting")
def get_setting(name: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """One setting as in the list; 404 for a name that is not declared."""
    setting = _declared(name)
    return describe(setting, _read(ctx))


@router.delete("/settings/{name}", summary="Reset a runtime setting")
def delete_setting(name: str, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Forget the saved value: the settings file, environment or default applies again;
    409 when that value would not fit the other settings; audited."""
    return reset(ctx, who, client_address(request), name)
