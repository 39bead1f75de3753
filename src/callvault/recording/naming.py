"""File names of finished recordings, from ``recording.filename_template`` (REQUIREMENTS T7).

A template such as ``{YEAR}-{MONTH}-{DAY}_{HOUR}.{MINUTE}.{SECOND}-{PHONE_NUMBER}-{ID}``
is checked when it is saved (:meth:`FilenameTemplate.parse`: unknown variables,
unbalanced braces and path separators are refused) and rendered per recording into one
safe path component without extension. Values come from SIP peers and administrators,
so each is sanitised: no path separators, control or format characters (a right-to-left
override could disguise the extension), leading dots or ``..``; whitespace collapsed;
the whole name capped at :data:`MAX_NAME_BYTES`. :func:`unique_name` adds ``-1``,
``-2``... when a name is taken. Pure: the caller says what time it is and what exists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_NAME_BYTES",
    "VARIABLES",
    "FilenameTemplate",
    "safe_component",
    "unique_name",
]

VARIABLES = ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "PHONE_NUMBER", "ID", "NAME")
DEFAULT_TEMPLATE = "{YEAR}-{MONTH}-{DAY}_{HOUR}.{MINUTE}.{SECOND}-{PHONE_NUMBER}-{ID}"
#: Longest name (UTF-8 bytes) before the collision suffix and the extension: leaves room
#: for both within the 255-byte limit of common file systems and S3 key prefixes.
MAX_NAME_BYTES = 180
UNKNOWN = "unknown"
# Refused in a template and replaced in values: separators, and what Windows (where
# recordings get downloaded to) does not allow in a name.
_FORBIDDEN = '/\\:*?"<>|'
_MAX_SUFFIX = 100_000
_DOTS = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s+")
_ALLOWED = ", ".join(f"{{{v}}}" for v in VARIABLES)


@dataclass(frozen=True, slots=True)
class FilenameTemplate:
    """A parsed template: literal text and ``{VARIABLE}`` names, in order."""

    parts: tuple[tuple[str, bool], ...]  # (text, is_variable)

    @classmethod
    def parse(cls, text: str) -> FilenameTemplate:
        if not text.strip():
            raise ValueError("the file name template is empty")
        bad = sorted({c for c in text if c in _FORBIDDEN})
        if bad:
            raise ValueError(
                f"the file name template contains {' '.join(map(repr, bad))} "
                f"(a file name cannot contain any of {' '.join(_FORBIDDEN)})"
            )
        if any(unicodedata.category(c).startswith("C") for c in text):
            raise ValueError("the file name template contains control characters")
        parts: list[tuple[str, bool]] = []
        unknown: list[str] = []
        position = 0
        for match in re.finditer(r"[{}]", text):
            if match.start() < position:
                continue
            if match.group() == "}":
                raise ValueError(f"'}}' at position {match.start() + 1} has no matching '{{'")
            close = text.find("}", match.start())
            inner = text.find("{", match.start() + 1)
            if close < 0 or 0 <= inner < close:
                raise ValueError(f"'{{' at position {match.start() + 1} is not closed")
            name = text[match.start() + 1 : close]
            if name not in VARIABLES:
                unknown.append(f"{{{name}}}")
            if match.start() > position:
                parts.append((text[position : match.start()], False))
            parts.append((name, True))
            position = close + 1
        if position < len(text):
            parts.append((text[position:], False))
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise ValueError(f"unknown variable{plural} {', '.join(unknown)} (allowed: {_ALLOWED})")
        return cls(tuple(parts))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(text for text, is_variable in self.parts if is_variable)

    def __str__(self) -> str:
        return "".join(f"{{{text}}}" if is_variable else text for text, is_variable in self.parts)

    def render(
        self,
        *,
        when: datetime,
        timezone: tzinfo,
        phone_number: str | None,
        id: str,
        name: str | None,
    ) -> str:
        """The file name (no extension) for a recording that started at ``when``."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("when must be a timezone-aware datetime")
        local = when.astimezone(timezone)
        values = {
            "YEAR": f"{local.year:04d}",
            "MONTH": f"{local.month:02d}",
            "DAY": f"{local.day:02d}",
            "HOUR": f"{local.hour:02d}",
            "MINUTE": f"{local.minute:02d}",
            "SECOND": f"{local.second:02d}",
            "PHONE_NUMBER": safe_component(phone_number),
            "ID": safe_component(id),
            "NAME": safe_component(name),
        }
        text = "".join(values[t] if is_variable else t for t, is_variable in self.parts)
        # The literal text is safe on its own, but joined to values it can still form
        # ``..`` or lead with a dot (".{NAME}"): sanitise the whole name once more.
        return safe_component(text)

    def example(self) -> str:
        """What this template gives for the call in REQUIREMENTS T7 (a live preview)."""
        return self.render(
            when=datetime(2018, 11, 22, 17, 8, 45, tzinfo=ZoneInfo("UTC")),
            timezone=ZoneInfo("UTC"),
            phone_number="123456789",
            id="1542902923.24",
            name="sales",
        )


def safe_component(value: str | None) -> str:
    """``value`` made into (part of) one safe file name; ``unknown`` when nothing is left."""
    if value is None:
        return UNKNOWN
    text = unicodedata.normalize("NFC", value)
    text = "".join(
        " "
        if c.isspace()
        else "_"
        if c in _FORBIDDEN
        else ""
        if unicodedata.category(c).startswith("C")
        else c
        for c in text
    )
    text = _DOTS.sub(".", _SPACES.sub(" ", text))
    text = _trim(text)
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        # "ignore" drops a character cut in half: the cut lands on a character boundary.
        text = _trim(encoded[:MAX_NAME_BYTES].decode("utf-8", errors="ignore"))
    return text or UNKNOWN


def _trim(text: str) -> str:
    # Leading dots hide a file; trailing dots and spaces vanish on Windows.
    return text.strip(". ")


def unique_name(base: str, extension: str, taken: Callable[[str], bool]) -> str:
    """``base.ext``, or ``base-1.ext``, ``base-2.ext``... the first that is not ``taken``."""
    suffix = f".{extension.lstrip('.')}" if extension else ""
    candidate = f"{base}{suffix}"
    number = 0
    while taken(candidate):
        number += 1
        if number > _MAX_SUFFIX:
            raise FileExistsError(f"{base}{suffix}: {_MAX_SUFFIX} names with suffixes are taken")
        candidate = f"{base}-{number}{suffix}"
    return candidate
