"""Who someone is: passwords, login throttling, server-side sessions and API tokens.

- Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory
  profile); a login by username or extension (REQUIREMENTS A1) that names nobody still
  costs one verification, so response times do not tell which logins exist.
- Five failed passwords in a row lock the account for 15 minutes; an address that
  fails 20 times in 15 minutes is refused (429) whatever login it tries.
- A web session is a random cookie secret; only its SHA-256 is stored, with the CSRF
  token of that session. It ends on logout, after 12 hours unused or 7 days in all,
  and every session of a user ends when the password changes.
- API tokens (``cvt_`` + 32 random bytes) are shown once and stored as SHA-256, with
  scopes, an optional expiry and revocation.

Functions take a SQLAlchemy session and ``now`` (aware UTC); no request objects here.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from callvault.db.accounts import ApiToken, User, WebSession
from callvault.web.errors import TooManyRequests

__all__ = [
    "LOCKOUT",
    "MAX_FAILURES",
    "SESSION_ABSOLUTE",
    "SESSION_IDLE",
    "TOKEN_SCOPES",
    "LoginThrottle",
    "NewSession",
    "authenticate",
    "end_session",
    "end_user_sessions",
    "find_session",
    "find_token",
    "hash_password",
    "new_api_token",
    "new_session",
    "verify_password",
]

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=12)
SESSION_ABSOLUTE = timedelta(days=7)
#: What an API token may be allowed to do; ``admin`` also needs an administrator's token.
TOKEN_SCOPES = frozenset(
    {"calls:read", "calls:pause", "recordings:read", "recordings:share", "admin"}
)
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class LoginThrottle:
    """Failed logins per client address in a sliding window (one process's memory)."""

    def __init__(self, limit: int = 20, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def check(self, address: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        failures = self._failures.get(address)
        if not failures:
            return
        while failures and moment - failures[0] > self.window:
            failures.popleft()
        if len(failures) >= self.limit:
            retry = int(self.window - (moment - failures[0])) + 1
            raise TooManyRequests(
                "too many failed logins from this address; try again later", retry_after=retry
            )

    def failed(self, address: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        self._failures.setdefault(address, deque()).append(moment)
        if len(self._failures) > 100_000:  # bounded: forget the oldest addresses
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


def find_user(db: Session, login: str) -> User | None:
    """The user whose username or extension is ``login`` (case-insensitive username)."""
    login = login.strip()
    if not login:
        return None
    return db.scalars(
        select(User).where(or_(func.lower(User.username) == login.lower(), User.extension == login))
    ).first()


def authenticate(db: Session, login: str, password: str, now: datetime) -> User | str:
    """The active user with this login and password, or why not (a message to show).

    Returns instead of raising so that the caller's transaction commits the failure
    count (and the lock) together with the audit line.
    """
    user = find_user(db, login)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)  # same cost as a real check
        return "this account is locked after too many failed logins; try later"
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not user.active or not ok:
        if user is not None and user.active:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILURES:
                user.locked_until = now + LOCKOUT
                user.failed_logins = 0
        return "wrong login or password"
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


@dataclass(frozen=True, slots=True)
class NewSession:
    cookie: str  # the secret for the browser; never stored
    csrf_token: str
    expires_at: datetime


def new_session(
    db: Session, user: User, now: datetime, ip: str | None, user_agent: str | None
) -> NewSession:
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + SESSION_ABSOLUTE
    db.add(
        WebSession(
            id=digest(cookie),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
            ip=ip,
            user_agent=(user_agent or "")[:512] or None,
        )
    )
    return NewSession(cookie, csrf, expires)


def find_session(db: Session, cookie: str, now: datetime) -> WebSession | None:
    """The live session for this cookie (touched), or None; an expired one is removed."""
    row = db.get(WebSession, digest(cookie))
    if row is None:
        return None
    if row.expires_at <= now or now - row.last_seen_at > SESSION_IDLE or not row.user.active:
        db.delete(row)
        return None
    if now - row.last_seen_at > timedelta(minutes=1):  # not a write per request
        row.last_seen_at = now
    return row


def end_session(db: Session, cookie: str) -> None:
    row = db.get(WebSession, digest(cookie))
    if row is not None:
        db.delete(row)


def end_user_sessions(db: Session, user_id: int, keep: str | None = None) -> int:
    """End every session of a user (password change, deactivation); returns how many."""
    rows = db.scalars(select(WebSession).where(WebSession.user_id == user_id)).all()
    ended = 0
    for row in rows:
        if row.id != keep:
            db.delete(row)
            ended += 1
    return ended


def new_api_token(
    db: Session,
    user: User,
    name: str,
    scopes: set[str],
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token row and its plaintext, which is shown once and never stored."""
    unknown = scopes - TOKEN_SCOPES
    if unknown or not scopes:
        raise ValueError(
            f"unknown scopes {sorted(unknown)}; allowed: {', '.join(sorted(TOKEN_SCOPES))}"
            if unknown
            else "a token needs at least one scope"
        )
    if "admin" in scopes and user.role != "admin":
        raise ValueError("only administrators can hold admin tokens")
    plaintext = "cvt_" + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=plaintext[:8],
        token_hash=digest(plaintext),
        scopes=sorted(scopes),
        created_at=now,
        expires_at=expires_at,
    )
    db.add(token)
    db.flush()
    return token, plaintext


def find_token(db: Session, plaintext: str, now: datetime) -> ApiToken | None:
    token = db.scalars(select(ApiToken).where(ApiToken.token_hash == digest(plaintext))).first()
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token
