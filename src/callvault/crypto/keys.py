"""The encryption keys the system holds (REQUIREMENTS T8-T12): set, list, rotate, warn.

Setting keys checks them first, outside any transaction (:func:`prepare_key`: gpg runs
for a fraction of a second), then saves them (:func:`save_key`): the new key becomes the
active one, new recordings are encrypted to it, and older keys stay, so a recording's
``key_fingerprint`` still finds the private key that opens it (rotation).

A private key is kept encrypted at rest with the server secret (``DATA/secret.key``,
:func:`callvault.web.keys.load_secret`): OpenPGP symmetric encryption (AES-256, gpg)
under a passphrase derived from that secret and the key's fingerprint by HMAC-SHA256,
so a sealed key copied onto another key's row does not open. The private key itself is
stored as the administrator gave it, still protected by its own passphrase if it has
one; that passphrase is only used to check the pair and is never stored. Every node
that plays recordings needs the same secret file.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.crypto.openpgp import (
    KeyInfo,
    OpenPGPError,
    UnusableKey,
    check_pair,
    open_sealed,
    seal_text,
)
from callvault.db.safety import EncryptionKey

__all__ = [
    "WARN_DAYS",
    "KeyAccess",
    "PreparedKey",
    "active_key",
    "encryption_problem",
    "key_access",
    "key_json",
    "key_warnings",
    "keys_overview",
    "prepare_key",
    "private_key",
    "save_key",
]

#: A key expiring within this many days is flagged (T12).
WARN_DAYS = 30
_SEAL_PURPOSE = b"callvault private key at rest\x00"


@dataclass(frozen=True, slots=True)
class PreparedKey:
    """Checked keys, ready to save: the private key already sealed."""

    info: KeyInfo
    public_key: str
    sealed_private_key: bytes | None
    passphrase_protected: bool


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """What the system can do with a recording's key: open it, and whether a passphrase
    is needed for that."""

    fingerprint: str
    has_private_key: bool
    passphrase_protected: bool


def _seal_passphrase(secret: bytes, fingerprint: str) -> str:
    return hmac.new(secret, _SEAL_PURPOSE + fingerprint.encode(), hashlib.sha256).hexdigest()


def prepare_key(
    public_key: str,
    private_key: str | None,
    passphrase: str | None,
    *,
    secret: bytes,
    now: datetime,
) -> PreparedKey:
    """Check the keys (T11) and seal the private one; ``OpenPGPError`` subclasses say
    why they are refused (not a key, expired, mismatched pair, wrong passphrase...)."""
    checked = check_pair(public_key, private_key, passphrase)
    info = checked.key
    if info.expired(now):
        raise UnusableKey(
            f"key {info.fingerprint} expired on {info.expires_at:%Y-%m-%d}: "
            "recordings cannot be encrypted to it"
        )
    sealed = None
    if private_key is not None:
        sealed = seal_text(private_key, _seal_passphrase(secret, info.fingerprint))
    return PreparedKey(info, public_key, sealed, checked.passphrase_protected)


def save_key(db: Session, prepared: PreparedKey, *, actor: str | None) -> EncryptionKey:
    """Make ``prepared`` the active key (a key set again is updated and reactivated;
    its stored private key stays when none is given this time)."""
    info = prepared.info
    row = db.scalars(
        select(EncryptionKey).where(EncryptionKey.fingerprint == info.fingerprint)
    ).first()
    if row is None:
        row = EncryptionKey(fingerprint=info.fingerprint, created_by=actor)
        db.add(row)
    row.public_key = prepared.public_key
    if prepared.sealed_private_key is not None:
        row.private_key = prepared.sealed_private_key
        row.passphrase_protected = prepared.passphrase_protected
    row.user_ids = list(info.user_ids)
    row.algorithm = info.algorithm
    row.expires_at = info.expires_at
    for other in db.scalars(select(EncryptionKey).where(EncryptionKey.active.is_(True))):
        other.active = False
    db.flush()  # one active key at a time, also within this transaction
    row.active = True
    db.flush()
    return row


def active_key(db: Session) -> EncryptionKey | None:
    return db.scalars(
        select(EncryptionKey).where(EncryptionKey.active.is_(True)).order_by(EncryptionKey.id)
    ).first()


def key_access(db: Session, fingerprint: str | None) -> KeyAccess | None:
    """What the system holds for the key ``fingerprint`` (None: no such key at all)."""
    if not fingerprint:
        return None
    row = db.scalars(select(EncryptionKey).where(EncryptionKey.fingerprint == fingerprint)).first()
    if row is None:
        return None
    has = row.private_key is not None
    return KeyAccess(row.fingerprint, has, has and bool(row.passphrase_protected))


def private_key(db: Session, fingerprint: str, secret: bytes) -> str | None:
    """The armoured private key of ``fingerprint``, unsealed; None when not in the system.

    ``OpenPGPError`` when it cannot be unsealed (the server secret changed since).
    """
    row = db.scalars(select(EncryptionKey).where(EncryptionKey.fingerprint == fingerprint)).first()
    if row is None or row.private_key is None:
        return None
    try:
        return open_sealed(row.private_key, _seal_passphrase(secret, row.fingerprint))
    except OpenPGPError:
        raise OpenPGPError(
            f"the private key {fingerprint} cannot be unsealed: the server secret "
            "(DATA/secret.key) is not the one it was stored with; set the key again"
        ) from None


def _utc(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: they are UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def key_warnings(expires_at: datetime | None, now: datetime) -> list[str]:
    """T12: an expired key, or one expiring within :data:`WARN_DAYS` days."""
    expires = _utc(expires_at)
    if expires is None:
        return []
    if expires <= now:
        return [
            f"expired on {expires:%Y-%m-%d}: recordings cannot be encrypted to it; set a new key"
        ]
    if expires - now <= timedelta(days=WARN_DAYS):
        days = max(1, (expires - now).days)
        plural = "s" if days != 1 else ""
        return [f"expires in {days} day{plural} ({expires:%Y-%m-%d}): set a new key before then"]
    return []


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def key_json(row: EncryptionKey, now: datetime) -> dict[str, Any]:
    """A key as the API, the page and ``callvault keys show --json`` show it."""
    warnings = key_warnings(row.expires_at, now)
    expires = _utc(row.expires_at)
    return {
        "fingerprint": row.fingerprint,
        "user_ids": list(row.user_ids or []),
        "algorithm": row.algorithm,
        "expires_at": _iso(row.expires_at),
        "expired": expires is not None and expires <= now,
        "active": bool(row.active),
        "private_key": row.private_key is not None,
        "passphrase_protected": bool(row.passphrase_protected),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "warnings": warnings,
    }


def keys_overview(db: Session, now: datetime) -> dict[str, Any]:
    """``{"active": key or null, "older": [keys, newest first]}``."""
    rows = db.scalars(select(EncryptionKey).order_by(EncryptionKey.id.desc())).all()
    active = next((r for r in rows if r.active), None)
    return {
        "active": key_json(active, now) if active else None,
        "older": [key_json(r, now) for r in rows if r is not active],
    }


def encryption_problem(db: Session, settings: Settings) -> str | None:
    """Why ``encryption.enabled`` cannot be true now: no key to encrypt to."""
    if settings["encryption.enabled"] and active_key(db) is None:
        return (
            "encryption.enabled needs an encryption key first: set one with "
            "`callvault keys set --public FILE` or on the Encryption keys page "
            "(/admin/keys)"
        )
    return None
