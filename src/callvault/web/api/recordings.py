"""REST API: a recording's metadata, its audio for the player, and its download.

Every route asks :func:`callvault.web.permissions.visible_recording` first: whoever may
not see the recording's call gets 404 (REQUIREMENTS D7), an API token without
``recordings:read`` gets 403. The audio route streams with HTTP Range
(:mod:`callvault.web.audio`) and transcodes what Chromium cannot play (GSM 6.10 in WAV)
to 16-bit PCM WAV; the download is always the file as stored, under its templated name.
A playback and a download are audited once each (the request that starts at byte 0),
not once per range request of the same playback.

An encrypted recording (:mod:`callvault.web.playback`) plays and downloads as audio,
decrypted on the fly, when its private key is in the system; a key with a passphrase
needs the header ``X-Key-Passphrase`` on each request (401 with ``passphrase_required``
without it, 403 for a wrong one, audited as ``recording.play.denied`` and throttled
like logins). Without the private key only ``/download?as=encrypted`` (the stored
``.gpg`` file) answers; the audio is 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from callvault.crypto.keys import KeyAccess, key_access
from callvault.db.models import Recording
from callvault.web.api.session import client_address
from callvault.web.audio import AudioBody, content_disposition, playable, serve
from callvault.web.audit import record
from callvault.web.errors import TooManyRequests
from callvault.web.params import RowId
from callvault.web.permissions import visible_recording
from callvault.web.playback import (
    PASSPHRASE_HEADER,
    WrongPassphrase,
    ciphertext_body,
    playback_body,
)
from callvault.web.principal import Principal, WebContext, context, principal

__all__ = ["download_name", "peaks_json", "recording_json", "router"]

router = APIRouter(prefix="/api/v1", tags=["recordings"])

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
Passphrase = Annotated[
    str | None,
    Header(
        alias=PASSPHRASE_HEADER,
        max_length=1024,
        description="The passphrase of the recording's private key, for this request only",
    ),
]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def download_name(recording: Recording) -> str:
    """The templated file name, or a plain one for a recording made before templates."""
    return recording.file_name or f"recording-{recording.id}.{recording.format}"


def peaks_json(recording: Recording) -> dict[str, Any] | None:
    """The waveform: one list of 0-255 peaks per channel, ``per_second`` points a second
    (stored interleaved by point: channel 0's peak, channel 1's, then the next point)."""
    if recording.peaks is None or not recording.peaks_per_second:
        return None
    channels = max(1, recording.channels or 1)
    points = len(recording.peaks) // channels
    data = recording.peaks[: points * channels]
    return {
        "per_second": recording.peaks_per_second,
        "channels": [list(data[channel::channels]) for channel in range(channels)],
    }


def recording_json(recording: Recording, access: KeyAccess | None = None) -> dict[str, Any]:
    """What the API and the call page say about a recording (``access``: what the
    system holds of an encrypted recording's key)."""
    ready = recording.state == "ready"
    encrypted = bool(recording.encrypted)
    analysis = recording.analysis or {}
    return {
        "id": recording.id,
        "uid": recording.uid,
        "call_id": recording.call_id,
        "kind": recording.kind,
        "segment_id": recording.segment_id,
        "participant_key": recording.participant_key,
        "state": recording.state,
        "error": recording.error,
        # What the file is, once there is one (a waiting recording has no format yet).
        "format": recording.format if ready else None,
        "codec": recording.codec if ready else None,
        "channels": recording.channels,
        "sample_rate": recording.sample_rate,
        "duration_s": recording.duration_s,
        "size_bytes": recording.size_bytes,
        "sha256": recording.sha256,
        "file_name": recording.file_name,
        "layout": recording.layout,
        "channel_map": recording.channel_map or [],
        "analysis": {
            "talk": analysis.get("talk", []),
            "paused": analysis.get("paused", []),
            "dtmf": analysis.get("dtmf", []),
            "silence_ratio": analysis.get("silence_ratio", []),
            "segments": analysis.get("segments", []),
        },
        "peaks": peaks_json(recording) if ready else None,
        "audio_url": f"/api/v1/recordings/{recording.id}/audio",
        "download_url": f"/api/v1/recordings/{recording.id}/download",
        # False: the audio URL sends a PCM WAV made from the file (GSM 6.10 in WAV).
        "playable": ready and playable(recording.codec),
        "created_at": _iso(recording.created_at),
        "ready_at": _iso(recording.ready_at),
        # A recording waiting for a mixer window says until when (mixer.windows).
        "waiting_until": _iso(recording.not_before),
        # OpenPGP (T8-T12): size_bytes and sha256 above describe the stored ciphertext.
        "encrypted": encrypted,
        "key_fingerprint": recording.key_fingerprint if encrypted else None,
        "decryptable": (not encrypted) or bool(access and access.has_private_key),
        "passphrase_required": bool(encrypted and access and access.passphrase_protected),
        "encrypted_download_url": (
            f"/api/v1/recordings/{recording.id}/download?as=encrypted" if encrypted else None
        ),
    }


def _visible(ctx: WebContext, who: Principal, recording_id: int) -> Recording:
    return ctx.database.read(lambda db: visible_recording(db, who, recording_id))


@router.get(
    "/recordings/{recording_id}",
    summary="A recording's metadata: format, duration, channel map, analysis, waveform peaks",
)
def get_recording(recording_id: RowId, ctx: Ctx, who: Who) -> dict[str, Any]:
    def load(db: Session) -> tuple[Recording, KeyAccess | None]:
        recording = visible_recording(db, who, recording_id)
        return recording, key_access(db, recording.key_fingerprint)

    return recording_json(*ctx.database.read(load))


def header_text(value: str | None) -> str | None:
    """A header's text as the client meant it: HTTP headers carry bytes, which the server
    reads as Latin-1; a passphrase sent as UTF-8 (curl, the player, any HTTP library)
    is decoded as UTF-8 again, so "zażółć" works as typed."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value  # not UTF-8: Latin-1 it is


def _decrypted(
    ctx: WebContext,
    who: Principal,
    recording: Recording,
    request: Request,
    passphrase: str | None,
    *,
    as_stored: bool,
) -> AudioBody:
    """The recording's audio (decrypted if need be); a wrong passphrase is audited and
    counted: many in a row are refused for a while (429), as wrong logins are."""
    passphrase = header_text(passphrase)
    if not recording.encrypted or not passphrase:
        return playback_body(ctx, recording, as_stored=as_stored, passphrase=passphrase)
    tries = f"passphrase:{who.user_id}"
    try:
        ctx.throttle.check(tries)
    except TooManyRequests as exc:
        raise TooManyRequests("too many wrong passphrases; try again later", **exc.extra) from None
    try:
        body = playback_body(ctx, recording, as_stored=as_stored, passphrase=passphrase)
    except WrongPassphrase:
        ctx.throttle.failed(tries)
        ctx.database.write(
            lambda db: record(
                db,
                who,
                "recording.play.denied",
                target_type="recording",
                target_id=recording.id,
                ip=client_address(request),
                call_id=recording.call_id,
                reason="wrong passphrase",
            )
        )
        raise
    ctx.throttle.succeeded(tries)
    return body


@router.get(
    "/recordings/{recording_id}/audio",
    summary="The audio for the player, with HTTP Range (206); GSM-in-WAV is sent as PCM WAV; "
    "an encrypted recording is decrypted on the fly",
    response_class=Response,
    responses={
        200: {"content": {"audio/ogg": {}, "audio/mpeg": {}, "audio/wav": {}}},
        206: {"description": "the requested byte range"},
        401: {"description": "encrypted: the key's passphrase is needed (X-Key-Passphrase)"},
        403: {"description": "wrong passphrase"},
        409: {"description": "encrypted, and its private key is not in the system"},
        416: {"description": "the range starts past the end"},
    },
)
def get_audio(
    recording_id: RowId, request: Request, ctx: Ctx, who: Who, passphrase: Passphrase = None
) -> Response:
    recording = _visible(ctx, who, recording_id)
    body = _decrypted(ctx, who, recording, request, passphrase, as_stored=False)
    served = serve(
        request, body, disposition=content_disposition("inline", download_name(recording))
    )
    if served.from_start:
        ctx.database.write(
            lambda db: record(
                db,
                who,
                "recording.play",
                target_type="recording",
                target_id=recording.id,
                ip=client_address(request),
                call_id=recording.call_id,
                transcoded=body.transcoded or None,
                decrypted=recording.encrypted or None,
            )
        )
    return served.response


@router.get(
    "/recordings/{recording_id}/download",
    summary="The recording's audio as an attachment with its templated file name; "
    "?as=encrypted: an encrypted recording's stored .gpg file",
    response_class=Response,
    responses={
        200: {
            "content": {
                "audio/ogg": {},
                "audio/mpeg": {},
                "audio/wav": {},
                "application/pgp-encrypted": {},
            }
        },
        401: {"description": "encrypted: the key's passphrase is needed (X-Key-Passphrase)"},
        403: {"description": "wrong passphrase"},
        409: {"description": "encrypted without its private key (use ?as=encrypted)"},
    },
)
def download(
    recording_id: RowId,
    request: Request,
    ctx: Ctx,
    who: Who,
    passphrase: Passphrase = None,
    as_: Annotated[
        Literal["audio", "encrypted"],
        Query(alias="as", description="audio (decrypted if need be) or encrypted (the .gpg)"),
    ] = "audio",
) -> Response:
    recording = _visible(ctx, who, recording_id)
    if as_ == "encrypted":
        body, name = ciphertext_body(ctx, recording)
    else:
        body = _decrypted(ctx, who, recording, request, passphrase, as_stored=True)
        name = download_name(recording)
    served = serve(request, body, disposition=content_disposition("attachment", name))
    if served.from_start:
        ctx.database.write(
            lambda db: record(
                db,
                who,
                "recording.download",
                target_type="recording",
                target_id=recording.id,
                ip=client_address(request),
                call_id=recording.call_id,
                file_name=name,
                encrypted=(as_ == "encrypted") or None,
            )
        )
    return served.response
