"""What the player and downloads send for any recording: encrypted, in S3, or plain.

Plain recordings in the data directory are :func:`callvault.web.audio.recording_body`.
Encrypted ones (:mod:`callvault.crypto`) are decrypted on the fly into the response,
never to disk: gpg streams the stored ciphertext (read through the recording's store)
into the body. A Range is served by decrypting from the start and skipping to the
range's first byte, since OpenPGP data cannot be entered in the middle (an hour of Opus,
about 10 MB, decrypts in well under a second, so a seek costs little). Size and ETag
are the audio's (kept when the file was encrypted). A private key with a passphrase
needs it on each request (header ``X-Key-Passphrase``, used for that request only and
never kept); GSM recordings to transcode are decrypted into memory (they are small).
Recordings kept in S3 are read through their store.

Permission checks are the caller's (``callvault.web.permissions``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from callvault.crypto.access import (
    NoPrivateKey,
    ciphertext_name,
    open_plaintext,
    opening,
    plaintext_facts,
)
from callvault.crypto.openpgp import BadPassphrase, OpenPGPError, PassphraseRequired
from callvault.crypto.stream import PlaintextStream
from callvault.db.models import Recording
from callvault.runtime_settings import effective_settings
from callvault.store import store_for
from callvault.store.base import BlobStore, StoreError
from callvault.web.audio import (
    CONTENT_TYPES,
    AudioBody,
    FileMissing,
    playable,
    recording_body,
    transcoded_audio,
)
from callvault.web.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    WebError,
)
from callvault.web.principal import WebContext

__all__ = ["PASSPHRASE_HEADER", "WrongPassphrase", "ciphertext_body", "playback_body"]

log = logging.getLogger(__name__)

#: The request header carrying the private key's passphrase (for that request only).
PASSPHRASE_HEADER = "X-Key-Passphrase"
#: Most bytes of decrypted audio held in memory to transcode (GSM: about 6 MB an hour).
_TRANSCODE_IN_MEMORY = 64 * 2**20
_CIPHERTEXT_TYPE = "application/pgp-encrypted"


class WrongPassphrase(Forbidden):
    """The passphrase given does not unlock the recording's private key (403)."""


def _ready(recording: Recording) -> None:
    if recording.state != "ready" or not recording.path:
        raise NotFound(
            f"recording {recording.id} is not ready yet (state: {recording.state})",
            state=recording.state,
        )


def _store_of(ctx: WebContext, recording: Recording) -> BlobStore:
    settings = ctx.settings
    if recording.store != "local":  # the bucket settings an administrator saved
        settings = ctx.database.read(lambda db: effective_settings(db, ctx.settings, check=False))
    return store_for(settings, recording.store)


def playback_body(
    ctx: WebContext,
    recording: Recording,
    *,
    as_stored: bool,
    passphrase: str | None = None,
    shared: bool = False,
) -> AudioBody:
    """:func:`recording_body` for any recording: kept in S3 or encrypted too.

    For an encrypted one: 409 ``Conflict`` without its private key in the system (the
    .gpg file is all there is), 401 ``Unauthorized`` (``passphrase_required``) when its
    key needs a passphrase and none came, :class:`WrongPassphrase` (403) for a wrong one.
    ``shared`` (a share link, where nobody can type a passphrase): 409 instead of 401.
    """
    _ready(recording)
    if not recording.encrypted and recording.store == "local":
        try:
            return recording_body(ctx.data_dir, recording, as_stored=as_stored)
        except FileMissing:
            # The uploader may have moved it to the bucket since the row was read.
            moved = ctx.database.read(lambda db: db.get(Recording, recording.id))
            if moved is None or moved.state != "ready" or moved.store == "local":
                raise
            recording = moved
    try:
        return _from_store(ctx, recording, as_stored, passphrase, shared)
    except StoreError as exc:
        raise _unavailable(recording, exc) from None


def _unavailable(recording: Recording, exc: StoreError) -> ServiceUnavailable:
    log.warning("recording %s: its store cannot be read: %s", recording.id, exc)
    return ServiceUnavailable(
        f"the storage of recording {recording.id} cannot be reached now; try again later"
    )


def _from_store(
    ctx: WebContext, recording: Recording, as_stored: bool, passphrase: str | None, shared: bool
) -> AudioBody:
    store = _store_of(ctx, recording)
    if not recording.encrypted:
        return _store_body(store, recording, as_stored=as_stored)
    try:
        opened = ctx.database.read(lambda db: opening(db, recording, ctx.secret))
        stream = open_plaintext(store, opened, passphrase)
    except NoPrivateKey as exc:
        raise Conflict(
            f"{exc}: download it with ?as=encrypted",
            encrypted=True,
            encrypted_download_url=f"/api/v1/recordings/{recording.id}/download?as=encrypted",
        ) from None
    except PassphraseRequired:
        if shared:
            raise Conflict(
                "this recording is encrypted with a key that needs a passphrase: it cannot "
                "be played from a share link"
            ) from None
        raise Unauthorized(
            f"recording {recording.id} is encrypted with a key that needs its passphrase: "
            f"send it in the {PASSPHRASE_HEADER} header",
            passphrase_required=True,
        ) from None
    except BadPassphrase:
        raise WrongPassphrase("wrong passphrase", passphrase_required=True) from None
    except FileNotFoundError:
        raise WebError(f"the file of recording {recording.id} is missing from storage") from None
    except OpenPGPError as exc:
        raise WebError(str(exc)) from None
    return _plaintext_body(stream, recording, as_stored=as_stored)


def ciphertext_body(ctx: WebContext, recording: Recording) -> tuple[AudioBody, str]:
    """An encrypted recording's stored bytes as they are, and their download name."""
    _ready(recording)
    if not recording.encrypted:
        raise Conflict(f"recording {recording.id} is not encrypted: download it as audio")
    key = recording.path or ""
    try:
        store = _store_of(ctx, recording)
        stat = store.stat(key)
    except StoreError as exc:
        raise _unavailable(recording, exc) from None
    if stat is None:
        raise WebError(f"the file of recording {recording.id} is missing from storage")

    def chunks(start: int, stop: int) -> Iterator[bytes]:
        yield from store.read(key, start, stop)

    tag = f'"{recording.sha256 or stat.size}"'
    return AudioBody(stat.size, _CIPHERTEXT_TYPE, tag, chunks), ciphertext_name(recording)


def _store_body(store: BlobStore, recording: Recording, *, as_stored: bool) -> AudioBody:
    """A plain recording kept in another store than the data directory."""
    key = recording.path or ""
    stat = store.stat(key)
    if stat is None:
        raise WebError(f"the file of recording {recording.id} is missing from storage")
    if not as_stored and not playable(recording.codec):
        data = b"".join(store.read(key))
        return transcoded_audio(data, recording.sha256, recording.duration_s)

    def chunks(start: int, stop: int) -> Iterator[bytes]:
        yield from store.read(key, start, stop)

    media_type = CONTENT_TYPES.get(recording.format, "application/octet-stream")
    return AudioBody(stat.size, media_type, f'"{recording.sha256 or stat.size}"', chunks)


class _PlainSpan(Iterator[bytes]):
    """Bytes [start, stop) of a decrypting stream: what comes before is decrypted and
    dropped. Closes the stream when done, failed, or dropped unread."""

    def __init__(self, stream: PlaintextStream, start: int, stop: int) -> None:
        self._stream, self._start, self._stop, self._position = stream, start, stop, 0

    def __next__(self) -> bytes:
        while self._position < self._stop:
            try:
                block = next(self._stream)
            except BaseException:
                self.close()
                raise
            begin, self._position = self._position, self._position + len(block)
            if self._position > self._start:
                piece = block[max(0, self._start - begin) : self._stop - begin]
                if piece:
                    return piece
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._stream.close()

    def __del__(self) -> None:
        # Dropped unread (the client went away): stop gpg, without waiting for it here,
        # which may be the event loop's thread.
        self._stream.close(wait=0.0)


def _in_memory(stream: PlaintextStream, recording: Recording) -> bytes:
    """All the audio, decrypted into memory (never to disk), within a bound."""
    data = bytearray()
    with stream:
        for block in stream:
            data += block
            if len(data) > _TRANSCODE_IN_MEMORY:
                raise WebError(
                    f"recording {recording.id} is too large to decrypt in memory for "
                    "playback: download it instead"
                )
    return bytes(data)


def _plaintext_body(stream: PlaintextStream, recording: Recording, *, as_stored: bool) -> AudioBody:
    size, digest = plaintext_facts(recording)
    transcode = not as_stored and not playable(recording.codec)
    media_type = CONTENT_TYPES.get(recording.format, "application/octet-stream")
    tag = f'"{digest or f"{recording.sha256}-audio"}"'
    if transcode or size is None:  # small (GSM), or a size not recorded
        data = _in_memory(stream, recording)
        if transcode:
            return transcoded_audio(data, digest, recording.duration_s)
        return AudioBody(len(data), media_type, tag, lambda a, b: iter((data[a:b],)))
    return AudioBody(
        size, media_type, tag, lambda a, b: _PlainSpan(stream, a, b), release=stream.close
    )
