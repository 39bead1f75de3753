"""REST API: the OpenPGP keys recordings are encrypted to (administrators only; T8-T12).

``GET /api/v1/keys`` shows the active key (fingerprint, user ids, algorithm, expiry and
T12 warnings, whether its private key is in the system and needs a passphrase) and the
older keys kept for recordings made before a rotation. ``POST /api/v1/keys`` sets a new
active key: the public key, optionally the private key and the passphrase that checks
the pair (T11: a real encrypt/decrypt round trip; the passphrase is then forgotten,
never stored or logged). A refused key is a 400 saying why. Setting keys is audited as
``keys.set``. The admin page (``/admin/keys``) calls :func:`set_keys` too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from callvault.crypto.keys import active_key, key_json, keys_overview, prepare_key, save_key
from callvault.crypto.openpgp import OpenPGPError
from callvault.runtime_settings import effective_settings
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest
from callvault.web.principal import Principal, WebContext, admin, context

__all__ = ["MAX_KEY_CHARS", "KeysIn", "keys_state", "router", "set_keys"]

router = APIRouter(prefix="/api/v1", tags=["keys"])

Admin = Annotated[Principal, Depends(admin)]
Ctx = Annotated[WebContext, Depends(context)]

#: Longest armoured key accepted (an RSA 4096 key with many signatures stays far below).
MAX_KEY_CHARS = 1_000_000


class KeysIn(BaseModel):
    public_key: str = Field(
        min_length=1, max_length=MAX_KEY_CHARS, description="ASCII-armoured public key"
    )
    private_key: str | None = Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="ASCII-armoured private key (optional: without it, encrypted "
        "recordings download as .gpg only)",
    )
    passphrase: str | None = Field(
        default=None,
        max_length=1024,
        description="the private key's passphrase, used only to check the pair, never stored",
    )


def keys_state(ctx: WebContext) -> dict[str, Any]:
    """The keys and whether encryption is on (what the API and the page show)."""
    now = ctx.now()

    def read(db: Session) -> dict[str, Any]:
        state = keys_overview(db, now)
        state["encryption_enabled"] = bool(
            effective_settings(db, ctx.settings, check=False)["encryption.enabled"]
        )
        return state

    return ctx.database.read(read)


def set_keys(ctx: WebContext, who: Principal, ip: str | None, body: KeysIn) -> dict[str, Any]:
    """Check and save the keys as the new active key; ``BadRequest`` saying why not."""
    now = ctx.now()
    try:
        prepared = prepare_key(
            body.public_key,
            body.private_key or None,
            body.passphrase or None,
            secret=ctx.secret,
            now=now,
        )
    except OpenPGPError as exc:
        raise BadRequest(str(exc), reason=type(exc).__name__) from None

    def save(db: Session) -> dict[str, Any]:
        before = active_key(db)
        previous = before.fingerprint if before is not None else None
        row = save_key(db, prepared, actor=who.login)
        record(
            db,
            who,
            "keys.set",
            target_type="encryption_key",
            target_id=row.fingerprint,
            ip=ip,
            private_key=prepared.sealed_private_key is not None,
            replaced=previous if previous != row.fingerprint else None,
        )
        return key_json(row, now)

    return ctx.database.write(save)


@router.get(
    "/keys",
    summary="The active encryption key with expiry warnings, and the older keys (admins)",
)
def get_keys(ctx: Ctx, who: Admin) -> dict[str, Any]:
    return keys_state(ctx)


@router.post(
    "/keys",
    status_code=201,
    summary="Set the active encryption key: public, optional private key and the passphrase "
    "that checks the pair (never stored); audited",
    responses={400: {"description": "not a key, expired, mismatched pair, wrong passphrase"}},
)
def post_keys(body: KeysIn, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return set_keys(ctx, who, client_address(request), body)
