"""Share links (REQUIREMENTS X9, U8): a public, expiring, revocable link to one recording
or to the stitched recording of a whole call, with an optional passcode.

- The URL is ``/s/<uid>.<expiry>.<signature>``: the link row's random uid, its expiry
  (Unix seconds) and an HMAC-SHA256 of both under the server secret, compared in
  constant time. A forged or altered token is refused before the database is asked.
- The row (``ShareLink``) is what makes a link live: revoking it or letting it expire
  ends the link whatever the URL says. A tampered, expired, revoked or unknown link
  gets the same 404, so the answer tells nothing about which it was.
- A passcode is kept as an argon2 hash (it may be short: it is a second factor next to
  the unguessable URL, not a password; wrong tries are throttled by the caller). Once it
  is given, a signed cookie scoped to that link's path unlocks it for 12 hours at most.
- Links last 7 days unless asked otherwise, at most ``web.share_max_days``.

Functions take the SQLAlchemy session, the secret and ``now``; routes live in
``web/api/shares.py`` and ``web/pages/share.py``. Who may share what is decided by
:mod:`callvault.web.permissions` before anything here is called.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db.accounts import ShareLink, User
from callvault.db.models import Call, Recording
from callvault.runtime_settings import effective_settings
from callvault.web.audit import record
from callvault.web.auth import verify_password
from callvault.web.errors import BadRequest, Conflict, NotFound
from callvault.web.principal import Principal

__all__ = [
    "DEFAULT_DAYS",
    "MAX_PASSCODE_LENGTH",
    "UNLOCK_COOKIE",
    "UNLOCK_SECONDS",
    "call_share_target",
    "check_passcode",
    "create_link",
    "link_expiry",
    "link_json",
    "link_token",
    "live_link",
    "read_token",
    "record_use",
    "share_max_days",
    "shared_recording",
    "unlock_cookie",
    "unlocked",
]

DEFAULT_DAYS = 7
MAX_PASSCODE_LENGTH = 128
UNLOCK_COOKIE = "callvault_share"
UNLOCK_SECONDS = 12 * 3600
GONE = "this share link is unknown, expired or revoked"

_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_UNLOCK = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
# One secret signs several things: a purpose prefix keeps one kind of signature from
# ever being accepted as another.
_LINK_PURPOSE = b"callvault share link\x00"
_UNLOCK_PURPOSE = b"callvault share unlock\x00"
_passcodes = PasswordHasher()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _mac(secret: bytes, purpose: bytes, message: str) -> str:
    digest = hmac.new(secret, purpose + message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_token(secret: bytes, link: ShareLink) -> str:
    """The token of the link's URL (the same every time it is asked for)."""
    expires = int(link.expires_at.timestamp())
    return f"{link.uid}.{expires}.{_mac(secret, _LINK_PURPOSE, f'{link.uid}.{expires}')}"


def read_token(secret: bytes, token: str, now: datetime) -> str | None:
    """The link uid if the token is one we signed and its own expiry is to come."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    uid, expires, signature = match.groups()
    expected = _mac(secret, _LINK_PURPOSE, f"{uid}.{expires}")
    if not hmac.compare_digest(signature, expected) or int(expires) <= now.timestamp():
        return None
    return uid


def share_max_days(db: Session, base: Settings) -> int:
    """``web.share_max_days`` as in force now (an administrator may have changed it)."""
    return int(effective_settings(db, base, check=False)["web.share_max_days"])


def link_expiry(db: Session, base: Settings, now: datetime, days: int | None) -> datetime:
    """When a new link ends: ``days`` from now (7 by default), refused above the maximum."""
    longest = share_max_days(db, base)
    if days is None:
        days = min(DEFAULT_DAYS, longest)
    if not 1 <= days <= longest:
        raise BadRequest(
            f"expires_in_days {days} is not allowed: a share link lasts 1 to {longest} days "
            f"(the administrator's setting web.share_max_days is {longest})",
            max_days=longest,
        )
    return now + timedelta(days=days)


def call_share_target(db: Session, call: Call) -> Recording:
    """The recording of the whole call: its stitched recording when ready, or its only
    segment's; ``Conflict`` saying how to make it otherwise."""
    rows = db.scalars(
        select(Recording).where(Recording.call_id == call.id).order_by(Recording.id)
    ).all()
    stitched = [r for r in rows if r.kind == "call"]
    ready = [r for r in stitched if r.state == "ready"]
    if ready:
        return ready[-1]
    segments = [r for r in rows if r.kind == "segment"]
    if len(segments) == 1:
        return segments[0]
    how = f"make it with `callvault calls stitch {call.id}`"
    if stitched:
        detail = (
            f"the stitched recording of call {call.id} is not ready (state: "
            f"{stitched[-1].state}); wait for it, or {how}"
        )
    elif segments:
        detail = (
            f"call {call.id} has {len(segments)} segment recordings and its stitched "
            f"recording is not ready; {how}"
        )
    else:
        detail = f"call {call.id} has no recording to share"
    raise Conflict(detail)


def create_link(
    db: Session,
    who: Principal,
    recording: Recording,
    *,
    expires_at: datetime,
    passcode: str | None,
    now: datetime,
    call_id: int | None = None,
    ip: str | None = None,
) -> ShareLink:
    """A new link to ``recording`` (for a call share, ``call_id`` too), audited."""
    if recording.state == "failed":
        raise Conflict(
            f"recording {recording.id} failed ({recording.error or 'no reason given'}); "
            f"make it again with `callvault recordings remake {recording.id}` first"
        )
    if passcode is not None and not 1 <= len(passcode) <= MAX_PASSCODE_LENGTH:
        raise BadRequest(f"a passcode has 1 to {MAX_PASSCODE_LENGTH} characters")
    link = ShareLink(
        recording_id=recording.id,
        call_id=call_id,
        created_by=who.user_id,
        created_at=now,
        expires_at=expires_at,
        passcode_hash=_passcodes.hash(passcode) if passcode else None,
    )
    db.add(link)
    db.flush()
    record(
        db,
        who,
        "share.create",
        target_type="call" if call_id is not None else "recording",
        target_id=call_id if call_id is not None else recording.id,
        ip=ip,
        share_id=link.id,
        recording_id=recording.id,
        expires_at=_iso(expires_at),
        passcode=bool(passcode) or None,
    )
    return link


def live_link(db: Session, secret: bytes, token: str, now: datetime) -> ShareLink:
    """The link this token opens; ``NotFound`` (one message for every reason) if none."""
    uid = read_token(secret, token, now)
    link = None
    if uid is not None:
        link = db.scalars(select(ShareLink).where(ShareLink.uid == uid)).first()
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        raise NotFound(GONE)
    return link


def shared_recording(db: Session, link: ShareLink) -> Recording:
    """What the link plays: for a call, its newest ready stitched recording (a call
    stitched after the link was made gets the whole call), else the recording linked."""
    if link.call_id is not None:
        stitched = db.scalars(
            select(Recording)
            .where(
                Recording.call_id == link.call_id,
                Recording.kind == "call",
                Recording.state == "ready",
            )
            .order_by(Recording.id.desc())
        ).first()
        if stitched is not None:
            return stitched
    recording = db.get(Recording, link.recording_id) if link.recording_id else None
    if recording is None:
        raise NotFound(GONE)
    return recording


def check_passcode(link: ShareLink, passcode: str) -> bool:
    return link.passcode_hash is not None and verify_password(
        link.passcode_hash, passcode[:MAX_PASSCODE_LENGTH]
    )


def unlock_cookie(secret: bytes, link: ShareLink, now: datetime) -> tuple[str, int]:
    """The cookie value that unlocks a passcode link, and its lifetime in seconds."""
    lifetime = max(1, min(UNLOCK_SECONDS, int((link.expires_at - now).total_seconds())))
    until = int(now.timestamp()) + lifetime
    return f"{until}.{_mac(secret, _UNLOCK_PURPOSE, f'{link.uid}.{until}')}", lifetime


def unlocked(secret: bytes, link: ShareLink, cookie: str | None, now: datetime) -> bool:
    """Whether the visitor may play the link: no passcode, or a valid unlock cookie."""
    if link.passcode_hash is None:
        return True
    match = _UNLOCK.fullmatch(cookie or "")
    if match is None:
        return False
    until, signature = match.groups()
    expected = _mac(secret, _UNLOCK_PURPOSE, f"{link.uid}.{until}")
    return hmac.compare_digest(signature, expected) and int(until) > now.timestamp()


def record_use(
    db: Session, link: ShareLink, recording: Recording, what: str, ip: str, now: datetime
) -> None:
    """Count and audit one use of a link (the page, a playback, a download)."""
    link.uses = (link.uses or 0) + 1
    link.last_used_at = now
    record(
        db,
        None,
        "share.use",
        target_type="recording",
        target_id=recording.id,
        ip=ip,
        actor=f"share:{link.id}",
        share_id=link.id,
        what=what,
    )


def link_json(link: ShareLink, url: str, creator: User | None, now: datetime) -> dict[str, Any]:
    return {
        "id": link.id,
        "url": url,
        "recording_id": link.recording_id,
        "call_id": link.call_id,
        "created_by": {"id": creator.id, "login": creator.login} if creator else None,
        "created_at": _iso(link.created_at),
        "expires_at": _iso(link.expires_at),
        "expired": link.expires_at <= now,
        "revoked": link.revoked_at is not None,
        "revoked_at": _iso(link.revoked_at),
        "passcode": link.passcode_hash is not None,
        "uses": link.uses or 0,
        "last_used_at": _iso(link.last_used_at),
    }
