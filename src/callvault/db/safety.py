"""ORM models of keeping recordings safe: OpenPGP keys and legal holds.

Same conventions as :mod:`callvault.db.models`. A private key is only ever stored
encrypted at rest (with the server secret); passphrases are never stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.base import Base, utcnow

__all__ = ["EncryptionKey", "LegalHold"]


class EncryptionKey(Base):
    """An OpenPGP key recordings are encrypted to (REQUIREMENTS T8-T12).

    The ``active`` key encrypts new recordings; older keys stay so that a recording's
    ``key_fingerprint`` finds the private key (if any) that opens it.
    """

    __tablename__ = "encryption_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str] = mapped_column(Text)  # ASCII-armoured
    # ASCII-armoured private key, itself encrypted with the server secret; None: the
    # private key is not in the system (recordings download as .gpg only, T12).
    private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    passphrase_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    user_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    algorithm: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(256))

    def __repr__(self) -> str:
        return f"<EncryptionKey {self.fingerprint[-16:]} active={self.active}>"


class LegalHold(Base):
    """A hold on a call (all its recordings) or on one recording: blocks deletion.

    Released holds stay as history (who held what, why, until when).
    """

    __tablename__ = "legal_hold"
    __table_args__ = (
        Index("ix_legal_hold_call_id", "call_id"),
        Index("ix_legal_hold_recording_id", "recording_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recording.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(256))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(256))
    released_at: Mapped[datetime | None]
