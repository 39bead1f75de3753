"""How the settings look to an administrator: each declared setting with its value,
source, type and allowed values, secrets masked, and cautions for values known to sound
poor. Read-only; the API (:mod:`callvault.web.api.settings`) and the admin page change
settings through :mod:`callvault.runtime_settings` and show them with this.

Nothing here names a setting it does not need to: the listing is whatever
:data:`callvault.config.SETTINGS` declares, so settings added later show up by
themselves, with a form field that fits their parser.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import SETTINGS, SETTINGS_BY_NAME, ConfigError, Setting, Settings
from callvault.config import format_value as _format_value
from callvault.db.models import Setting as StoredSetting
from callvault.runtime_settings import DATABASE, consistency_problem, parse_value
from callvault.setting_values import non_negative_int, parse_bool, positive_float, positive_int

__all__ = [
    "MASK",
    "MP3_WARNING",
    "VORBIS_WARNING",
    "Current",
    "as_text",
    "describe",
    "field_type",
    "group_of",
    "grouped",
    "is_secret",
    "shown",
    "warning_for",
]

MASK = "********"
_SECRET_WORDS = ("password", "passphrase", "secret", "token", "credential", "private_key")
# Warnings shown next to a field, from the measurements its help text quotes.
MP3_WARNING = (
    "Below 32 kbit/s speech sounds poor (measured PESQ 2.0 at 16 kbit/s, 2.7 at 32; "
    "README, Performance, Formats)."
)
VORBIS_WARNING = (
    "Vorbis couples the two channels: when both parties talk at once quality drops "
    "(measured PESQ 2.6 at q4 against 3.3 with one party talking; README, Performance, "
    "Formats). Opus keeps each party in a stream of its own."
)


def group_of(name: str) -> str:
    """``recording.format`` -> ``recording``; a name without a dot is ``general``."""
    prefix, dot, _ = name.partition(".")
    return prefix if dot else "general"


def is_secret(setting: Setting) -> bool:
    return any(word in setting.name.lower() for word in _SECRET_WORDS)


def shown(setting: Setting, text: str | None) -> str | None:
    """``text`` as it may be shown and audited: secrets and URL passwords masked."""
    if not text:
        return text
    if is_secret(setting):
        return MASK
    if "://" in text and "@" in text:
        try:
            parts = urlsplit(text)
            password = parts.password
        except ValueError:
            return text
        if password is not None:
            userinfo, _, host = parts.netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            return parts._replace(netloc=f"{user}:{MASK}@{host}").geturl()
    return text


def _closure(parse: Callable[[str], Any]) -> dict[str, Any]:
    # choice() and whole_number() keep their allowed values in the closure of the
    # parser they return: reading them there keeps config.py the one place they are
    # written down.
    code, cells = getattr(parse, "__code__", None), getattr(parse, "__closure__", None)
    if code is None or not cells:
        return {}
    return dict(zip(code.co_freevars, (cell.cell_contents for cell in cells), strict=False))


def field_type(setting: Setting) -> dict[str, Any]:
    """``type`` (boolean, choice, integer, number or text) and, where known, ``choices``
    (texts), ``minimum`` and ``maximum``."""
    parse = setting.parse
    name = getattr(parse, "__qualname__", "")
    cells = _closure(parse)
    if parse is parse_bool:
        return {"type": "boolean", "choices": ["true", "false"]}
    if name.startswith("choice.") and isinstance(cells.get("options"), tuple):
        return {"type": "choice", "choices": [str(option) for option in cells["options"]]}
    if name.startswith("whole_number.") and {"low", "high", "only"} <= cells.keys():
        found: dict[str, Any] = {"type": "integer", "minimum": cells["low"]}
        found["maximum"] = cells["high"]
        if cells["only"]:
            found["choices"] = [str(value) for value in cells["only"]]
        return found
    if parse is positive_int or parse is non_negative_int:
        return {"type": "integer", "minimum": 1 if parse is positive_int else 0}
    if parse is positive_float:
        return {"type": "number"}
    return {"type": "text"}


def _json_value(value: Any) -> Any:
    """The parsed value where JSON can hold it (numbers, booleans, lists), else its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _format_value(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    return _format_value(value)


def warning_for(name: str, settings: Settings) -> str | None:
    """A caution for a value known to sound poor (shown next to its field)."""
    if name == "recording.mp3_bitrate" and settings[name] < 32:
        return MP3_WARNING
    if name == "recording.vorbis_quality":
        return VORBIS_WARNING
    if name == "recording.codec" and settings[name] == "vorbis":
        return VORBIS_WARNING
    return None


class Current:
    """The settings as the server uses them now, read in one transaction.

    Saved values that no longer parse (left by another version of callvault) are set
    aside in ``invalid`` instead of failing the listing: the page must let an
    administrator fix them.
    """

    def __init__(self, db: Session, base: Settings) -> None:
        self.rows = {row.name: row for row in db.scalars(select(StoredSetting))}
        self.invalid: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name, row in self.rows.items():
            setting = SETTINGS_BY_NAME.get(name)
            if setting is None or not setting.runtime:
                continue  # ignored by runtime_settings too
            try:
                values[name] = parse_value(setting, row.value, DATABASE)
            except ConfigError as exc:
                self.invalid[name] = str(exc)
        self.settings = base.overlay(values, DATABASE)
        self.problem = consistency_problem(self.settings)

    def text(self, name: str) -> str | None:
        return as_text(self.settings[name])


def as_text(value: Any) -> str | None:
    """A parsed value as the text that sets it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _format_value(value)


def describe(setting: Setting, now: Current) -> dict[str, Any]:
    """One setting as the API and the page show it."""
    value = now.settings[setting.name]
    source = now.settings.sources[setting.name]
    row = now.rows.get(setting.name) if source == DATABASE else None
    secret = is_secret(setting)
    return {
        "name": setting.name,
        "group": group_of(setting.name),
        "value": shown(setting, now.text(setting.name)),
        "parsed": MASK if secret and value else _json_value(value),
        "default": shown(setting, setting.default),
        "source": source,
        "runtime": setting.runtime,
        "kind": "runtime" if setting.runtime else "start-up",
        "help": setting.help,
        **field_type(setting),
        "secret": secret,
        "updated_by": row.updated_by if row else None,
        "updated_at": row.updated_at.isoformat() if row else None,
        "warning": warning_for(setting.name, now.settings),
        "invalid": now.invalid.get(setting.name),
    }


def grouped(now: Current) -> list[dict[str, Any]]:
    """Every declared setting, grouped by prefix in declaration order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for setting in SETTINGS:
        groups.setdefault(group_of(setting.name), []).append(describe(setting, now))
    return [{"name": name, "settings": items} for name, items in groups.items()]
