"""Test keys made the way customers make them: the ``gpg`` CLI (Debian's 2.2).

:func:`keyring` generates them once per test process, in a temporary GNUPGHOME (its
agent killed and the directory removed when done), and keeps only their armoured
exports: an RSA 3072 key protected by a passphrase (primary key for certification, an
RSA 3072 encryption subkey), two ed25519/cv25519 keys without one, a key expiring in 10
days, and one that expired in 2020 (made with gpg's faked system time).

:func:`gpg_decrypt` and :func:`gpg_encrypt` are the other side of the interop tests:
the gpg CLI, in a fresh home of its own, opening what callvault wrote and writing what
callvault must open.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from callvault.crypto.openpgp import HOME_PREFIX

PASSPHRASE = "correct horse battery staple"
UTF8_PASSPHRASE = "zażółć gęślą jaźń"


@dataclass(frozen=True)
class Key:
    fingerprint: str
    public: str
    private: str
    passphrase: str | None = None


@dataclass(frozen=True)
class Keyring:
    rsa: Key  # RSA 3072 with PASSPHRASE
    ed: Key  # ed25519/cv25519, no passphrase
    other: Key  # another ed25519/cv25519, no passphrase
    soon: Key  # ed25519/cv25519 expiring in 10 days
    expired: Key  # ed25519/cv25519, expired on 2020-12-31
    utf8: Key  # ed25519/cv25519 with a passphrase beyond ASCII (UTF8_PASSPHRASE)


@contextmanager
def gpg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="test-gpg-"))
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    """Run the gpg CLI in ``home`` (batch, loopback pinentry); its stdout."""
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        input=data,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _fingerprint(home: Path, uid: str) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", uid).decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))


def _export(home: Path, uid: str, passphrase: str | None) -> Key:
    public = gpg(home, "--armor", "--export", uid).decode()
    private = gpg(
        home, "--passphrase", passphrase or "", "--armor", "--export-secret-keys", uid
    ).decode()
    return Key(_fingerprint(home, uid), public, private, passphrase)


def _ed25519(home: Path, uid: str, expire: str = "never", *extra: str, passphrase: str = "") -> Key:
    gpg(
        home,
        *extra,
        "--passphrase",
        passphrase,
        "--quick-gen-key",
        uid,
        "future-default",
        "default",
        expire,
    )
    return _export(home, uid, passphrase or None)


@functools.cache
def keyring() -> Keyring:
    with gpg_home() as home:
        rsa_uid = "Recordings RSA <rsa@callvault.test>"
        gpg(
            home, "--passphrase", PASSPHRASE, "--quick-gen-key", rsa_uid, "rsa3072", "cert", "never"
        )
        fingerprint = _fingerprint(home, rsa_uid)
        gpg(
            home,
            "--passphrase",
            PASSPHRASE,
            "--quick-add-key",
            fingerprint,
            "rsa3072",
            "encr",
            "never",
        )
        return Keyring(
            rsa=_export(home, rsa_uid, PASSPHRASE),
            ed=_ed25519(home, "Recordings Ed <ed@callvault.test>"),
            other=_ed25519(home, "Other Ed <other@callvault.test>"),
            soon=_ed25519(home, "Soon <soon@callvault.test>", "10d"),
            expired=_ed25519(
                home,
                "Old <old@callvault.test>",
                "1y",
                "--faked-system-time",
                "20200101T000000",
            ),
            utf8=_ed25519(home, "Zażółć <utf8@callvault.test>", passphrase=UTF8_PASSPHRASE),
        )


def gpg_decrypt(ciphertext: bytes, key: Key) -> bytes:
    """What ``gpg --decrypt`` makes of ``ciphertext`` with ``key``'s private half."""
    with gpg_home() as home:
        gpg(home, "--import", data=key.private.encode())
        return gpg(home, "--passphrase", key.passphrase or "", "--decrypt", data=ciphertext)


def gpg_encrypt(plaintext: bytes, key: Key) -> bytes:
    """``gpg --encrypt`` to ``key`` (gpg's defaults: compression included)."""
    with gpg_home() as home:
        gpg(home, "--import", data=key.public.encode())
        return gpg(
            home,
            "--trust-model",
            "always",
            "--recipient",
            key.fingerprint,
            "--encrypt",
            data=plaintext,
        )


def gpg_packets(ciphertext: bytes) -> str:
    """``gpg --list-packets`` of a message (no key needed for the outer packets)."""
    with gpg_home() as home:
        done = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--list-packets"],
            input=ciphertext,
            capture_output=True,
            check=False,
        )
        return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def leftover_homes() -> list[str]:
    """This process's throwaway gpg homes still present (none at rest)."""
    places = {Path("/dev/shm"), Path(tempfile.gettempdir())}
    return sorted(
        str(entry)
        for place in places
        if place.is_dir()
        for entry in place.iterdir()
        if entry.name.startswith(f"{HOME_PREFIX}{os.getpid()}-")
    )
