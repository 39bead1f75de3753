"""Reading a recording's stored bytes, and its audio when the stored bytes are ciphertext.

Used by the HTTP player and downloads (:mod:`callvault.web.audio`) and by
``callvault recordings get``: the file is read through the recording's own store
(:func:`callvault.store.store_for`: the data directory, or the S3 bucket), and an
encrypted one is decrypted as a stream (:class:`~callvault.crypto.stream.PlaintextStream`), never to
disk, with the stored private key of the recording's ``key_fingerprint`` and, if that
key has one, the passphrase given for this one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from callvault.crypto.keys import KeyAccess, key_access, private_key
from callvault.crypto.openpgp import OpenPGPError, PassphraseRequired
from callvault.crypto.sealing import SUFFIX
from callvault.crypto.stream import PlaintextStream
from callvault.db.models import Recording
from callvault.store.base import BlobStore

__all__ = [
    "NoPrivateKey",
    "Opening",
    "ciphertext_name",
    "open_plaintext",
    "opening",
    "plaintext_facts",
]


class NoPrivateKey(OpenPGPError):
    """The recording is encrypted and its private key is not in the system."""


@dataclass(frozen=True, slots=True)
class Opening:
    """What opening one encrypted recording takes, read in one transaction."""

    recording_id: int
    path: str
    access: KeyAccess | None
    private_key: str | None  # armoured, unsealed; None: not in the system


def opening(db: Session, recording: Recording, secret: bytes) -> Opening:
    """The key material for ``recording`` (encrypted): call inside a read transaction."""
    access = key_access(db, recording.key_fingerprint)
    key = None
    if access is not None and access.has_private_key:
        key = private_key(db, access.fingerprint, secret)
    return Opening(recording.id, recording.path or "", access, key)


def open_plaintext(store: BlobStore, opened: Opening, passphrase: str | None) -> PlaintextStream:
    """The recording's audio as a stream; ``NoPrivateKey``, ``PassphraseRequired``,
    ``BadPassphrase`` or ``OpenPGPError`` before the first byte."""
    what = f"recording {opened.recording_id}"
    if opened.private_key is None:
        raise NoPrivateKey(
            f"{what} is encrypted and its private key is not in the system: only the "
            "encrypted file (.gpg) can be downloaded"
        )
    passphrase = passphrase or None
    if passphrase is None and opened.access is not None and opened.access.passphrase_protected:
        raise PassphraseRequired(f"{what}: the private key needs its passphrase")
    return PlaintextStream.open(store.read(opened.path), opened.private_key, passphrase, what=what)


def plaintext_facts(recording: Recording) -> tuple[int | None, str | None]:
    """Size and SHA-256 of an encrypted recording's audio (None when not known)."""
    facts: Any = (recording.analysis or {}).get("plaintext") or {}
    size, digest = facts.get("size_bytes"), facts.get("sha256")
    return (int(size) if size is not None else None, str(digest) if digest else None)


def ciphertext_name(recording: Recording) -> str:
    """The download name of the stored ciphertext: the audio's name and ``.gpg``."""
    return (recording.file_name or f"recording-{recording.id}.{recording.format}") + SUFFIX
