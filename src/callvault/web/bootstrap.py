"""The first administrator: made at the first start on an empty user table.

``callvault serve`` on a new data directory creates the user ``admin`` with a random
one-time password and prints it once (stderr and the log); the administrator logs in
with it and changes it (or sets another with ``callvault users passwd admin``).
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.accounts import User
from callvault.web.auth import hash_password

__all__ = ["ensure_admin"]


def ensure_admin(db: Session) -> str | None:
    """Create ``admin`` when there are no users; return its password, or None."""
    if db.scalar(select(func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    db.add(
        User(
            username="admin",
            display_name="Administrator",
            role="admin",
            scope="all",
            password_hash=hash_password(password),
        )
    )
    return password
