"""Changing settings while callvault is installed: runtime ones in the database, the rest
in the settings file.

Runtime settings (``Setting.runtime`` in :mod:`callvault.config`) are saved in the
``setting`` table by an administrator (``callvault settings set`` now; the admin page and
the API later call the same functions) and win over the default, the TOML file and the
environment. Readers call :func:`effective_settings` when they start a piece of work, so
a change applies to the next recording without a restart. Start-up settings cannot live
in the database: :func:`write_settings_file` puts them in the TOML file instead, for the
next start.

Some settings must agree (the codec must fit the format; GSM needs a mono layout):
:func:`consistency_problem` says why they do not, and every save and every load checks
it. Functions here run inside the caller's transaction (``Database.write`` /
``Database.read``) and never commit.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.config import (
    SETTINGS_BY_NAME,
    ConfigError,
    Setting,
    Settings,
    format_value,
    read_settings_file,
)
from callvault.db.models import Recording, utcnow
from callvault.db.models import Setting as StoredSetting

__all__ = [
    "CODECS_BY_FORMAT",
    "DATABASE",
    "MAX_VALUE_LENGTH",
    "consistency_problem",
    "effective_settings",
    "recording_codec",
    "reset_setting",
    "set_setting",
    "set_settings",
    "settings_file",
    "write_settings_file",
]

#: ``Settings.sources`` of a value saved in the database.
DATABASE = "database"
#: Longest value accepted (characters): a template or a week of windows is far shorter.
MAX_VALUE_LENGTH = 4096
#: Codecs each recording.format can hold; the first is what ``auto`` means.
CODECS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "ogg": ("opus", "vorbis"),
    "mp3": ("mp3",),
    "wav": ("pcm", "alaw", "ulaw", "gsm"),
}
# GSM 6.10 in WAV (libsndfile) is mono only.
_MONO_ONLY_CODECS = frozenset({"gsm"})
_MONO_LAYOUTS = ("mono", "separate")
_NEW = "new value"
_FILE_HEADER = (
    "# Maintained by `callvault settings set`: values set there are kept, comments are not.\n"
)


def recording_codec(settings: Settings) -> str:
    """recording.codec with ``auto`` resolved for recording.format."""
    codec = str(settings["recording.codec"])
    return CODECS_BY_FORMAT[settings["recording.format"]][0] if codec == "auto" else codec


def consistency_problem(settings: Settings) -> str | None:
    """Why settings that must agree do not (``None`` when they do)."""

    def shown(name: str) -> str:
        source = settings.sources[name]
        where = f"({source})" if source == _NEW else f"(from {source})"
        return f"{name} = {format_value(settings[name])!r} {where}"

    fmt, codec = settings["recording.format"], settings["recording.codec"]
    allowed = CODECS_BY_FORMAT[fmt]
    if codec != "auto" and codec not in allowed:
        return (
            f"{shown('recording.codec')} does not fit {shown('recording.format')}: with "
            f"recording.format {fmt}, recording.codec must be auto or {' or '.join(allowed)}"
        )
    resolved = allowed[0] if codec == "auto" else codec
    if resolved in _MONO_ONLY_CODECS and settings["recording.layout"] not in _MONO_LAYOUTS:
        return (
            f"{shown('recording.codec')} needs recording.layout mono or separate (GSM 6.10 "
            f"in WAV is mono only), not {shown('recording.layout')}"
        )
    if settings["storage.backend"] == "s3" and not settings["storage.s3.bucket"]:
        return (
            f"{shown('storage.backend')} needs a bucket: set storage.s3.bucket too (both at "
            "once: callvault settings set storage.backend s3 storage.s3.bucket NAME)"
        )
    return None


def effective_settings(session: Session, base: Settings, *, check: bool = True) -> Settings:
    """``base`` (from :func:`~callvault.config.load_settings`) overlaid with the runtime
    values saved in the database, whose source is ``"database"``.

    Raises ``ConfigError`` for a saved value that is no longer valid and, with ``check``,
    when settings that must agree do not (``check=False`` lets a listing show them).
    """
    settings = base.overlay(_stored_values(session), DATABASE)
    if check and (problem := consistency_problem(settings)):
        raise ConfigError(problem)
    return settings


def set_setting(
    session: Session, name: str, text: str, *, updated_by: str | None, base: Settings
) -> Any:
    """Validate and save one runtime setting; return its parsed value."""
    return set_settings(session, {name: text}, updated_by=updated_by, base=base)[name]


def set_settings(
    session: Session, values: Mapping[str, str], *, updated_by: str | None, base: Settings
) -> dict[str, Any]:
    """Validate and save several runtime settings at once (all or none).

    Changing the format and the codec together needs this: each change alone may not
    fit the other's current value.
    """
    parsed = {name: parse_value(_runtime_setting(name), text) for name, text in values.items()}
    current = base.overlay(_stored_values(session, skip=values.keys()), DATABASE)
    problem = consistency_problem(current.overlay(parsed, _NEW))
    if problem is None and "encryption.enabled" in values:
        # A state check, not a settings one: encryption needs a key saved first.
        from callvault.crypto.keys import encryption_problem

        problem = encryption_problem(session, current.overlay(parsed, _NEW))
    if problem is None and not values.keys().isdisjoint(_BUCKET_PLACE):
        problem = _bucket_problem(session, base, current.overlay(parsed, _NEW))
    if problem:
        changes = ", ".join(f"{name} = {text!r}" for name, text in values.items())
        raise ConfigError(f"cannot set {changes}: {problem}")
    now = utcnow()
    for name, text in values.items():
        row = session.get(StoredSetting, name)
        if row is None:
            session.add(StoredSetting(name=name, value=text, updated_at=now, updated_by=updated_by))
        else:
            row.value, row.updated_at, row.updated_by = text, now, updated_by
    session.flush()
    _apply_retention(session, values.keys(), base, updated_by)
    return parsed


#: What names the place of the recordings already in S3: a row keeps only its key.
_BUCKET_PLACE = ("storage.s3.bucket", "storage.s3.prefix")


def _bucket_problem(session: Session, base: Settings, after: Settings) -> str | None:
    """Why the bucket or prefix cannot change now: recordings are kept under the old
    one, and a row knows only its key (they would all become unplayable)."""
    before: dict[str, Any] = {}
    for name in _BUCKET_PLACE:
        row = session.get(StoredSetting, name)
        setting = SETTINGS_BY_NAME[name]
        before[name] = parse_value(setting, row.value, DATABASE) if row else base[name]
    changed = [name for name in _BUCKET_PLACE if before[name] != after[name]]
    if not changed:
        return None
    kept = session.scalar(
        select(func.count())
        .select_from(Recording)
        .where(Recording.store == "s3", Recording.deleted_at.is_(None))
    )
    if not kept:
        return None
    where = f"s3://{before['storage.s3.bucket']}/{before['storage.s3.prefix']}"
    return (
        f"{kept} recordings are kept in {where} and would become unreachable: move them "
        "to the data directory first (callvault settings set storage.backend local; "
        "callvault storage move --to local), change "
        f"{' and '.join(changed)}, then move them back"
    )


def _apply_retention(
    session: Session, names: Iterable[str], base: Settings, actor: str | None
) -> None:
    """A changed retention policy re-dates the recordings at once (W2: moving to the
    limited tier restarts deletion, leaving it stops it), not at the next purge."""
    if any(name.startswith("retention.") for name in names):
        from callvault.recording.retention import sync_policy  # it builds on this module

        sync_policy(session, base, utcnow(), actor=actor or "settings")


def reset_setting(session: Session, name: str, *, base: Settings | None = None) -> None:
    """Forget the saved value: the file, environment or default applies again.

    With ``base``, refuse when the value that comes back would not fit the others.
    """
    _runtime_setting(name)
    if base is not None:
        after = base.overlay(_stored_values(session, skip=(name,)), DATABASE)
        bucket = _bucket_problem(session, base, after) if name in _BUCKET_PLACE else None
        if problem := consistency_problem(after) or bucket:
            raise ConfigError(f"cannot reset {name}: {problem}")
    row = session.get(StoredSetting, name)
    if row is not None:
        session.delete(row)
        session.flush()
        if base is not None:
            _apply_retention(session, (name,), base, None)


def parse_value(setting: Setting, text: str, source: str | None = None) -> Any:
    """``setting.parse(text)``, or ``ConfigError`` naming the setting, value and reason."""
    where = f" (from {source})" if source else ""
    if len(text) > MAX_VALUE_LENGTH:
        raise ConfigError(
            f"{setting.name}{where} is not valid: longer than {MAX_VALUE_LENGTH} characters"
        )
    if "\0" in text:  # PostgreSQL text cannot hold it, and no setting needs it
        raise ConfigError(f"{setting.name}{where} is not valid: it holds a NUL character")
    try:
        text.encode("utf-8")
        return setting.parse(text)
    except UnicodeEncodeError:
        raise ConfigError(f"{setting.name}{where} is not valid: not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigError(f"{setting.name} = {text!r}{where} is not valid: {exc}") from None


def settings_file(data: str | None, config: str | None) -> Path:
    """The TOML file :func:`~callvault.config.load_settings` reads for these options."""
    if config:
        return Path(config)
    return Path(data or os.environ.get("CALLVAULT_DATA_DIR") or "./callvault-data") / (
        "callvault.toml"
    )


def write_settings_file(path: Path, changes: Mapping[str, str | None]) -> None:
    """Set (or with ``None`` remove) settings in the TOML file, keeping the others.

    The file is rewritten as flat dotted keys (``sip.listen = "0.0.0.0:5070"``) and
    replaced atomically; a new file is readable by its owner only, since it may hold a
    database password.
    """
    for name, text in changes.items():
        setting = known_setting(name)
        if name == "data_dir":
            raise ConfigError(
                "data_dir locates the settings file itself: use --data or CALLVAULT_DATA_DIR"
            )
        if text is not None:
            parse_value(setting, text)
    values = read_settings_file(path) if path.exists() else {}
    for name, text in changes.items():
        if text is None:
            values.pop(name, None)
        else:
            values[name] = text
    lines = [_FILE_HEADER] + [f"{name} = {_toml_value(values[name])}\n" for name in values]
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


def known_setting(name: str) -> Setting:
    """The declared setting called ``name``, or ``ConfigError`` suggesting a close name."""
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None:
        close = difflib.get_close_matches(name, SETTINGS_BY_NAME, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown setting {name!r}{hint}")
    return setting


def _runtime_setting(name: str) -> Setting:
    setting = known_setting(name)
    if not setting.runtime:
        raise ConfigError(
            f"{name} is a start-up setting: it is read when callvault starts and cannot be "
            "saved in the database (callvault settings set writes it into the settings file)"
        )
    return setting


def _stored_values(session: Session, skip: Collection[str] = ()) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for row in session.scalars(select(StoredSetting)):
        setting = SETTINGS_BY_NAME.get(row.name)
        # A row this version does not declare as runtime (left by another version of
        # callvault) must not stop recordings: it is ignored.
        if setting is None or not setting.runtime or row.name in skip:
            continue
        values[row.name] = parse_value(setting, row.value, DATABASE)
    return values


def _toml_value(text: str) -> str:
    # Whole numbers stay numbers (TOML integers are 64-bit); everything else is a string.
    if text.isascii() and text.isdigit() and len(text) < 19 and text == str(int(text)):
        return text
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
