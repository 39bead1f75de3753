"""OpenPGP through GnuPG: inspect keys, check that a pair belongs together, encrypt a
file to a public key, and seal small secrets with a symmetric passphrase.

Library choice. ``python-gnupg`` driving Debian's ``gpg`` (2.2), not ``pysequoia``:
gpg streams (13 MB peak memory for a 300 MB file, measured on this machine) where
pysequoia's ``decrypt_file`` holds 1.5x the file in memory, and keys pysequoia generates
cannot be read by gpg 2.2, the tool customers use to make keys and to open what we
write (interop both ways is a test). gpg's two costs are handled here: compression is
off (``--compress-algo none``: audio does not compress, and zlib made gpg several
times slower), and gpg-agent's passphrase cache is defeated.

Every gpg call runs in a throwaway GNUPGHOME (:func:`gnupg_home`): a fresh 0700
directory in ``/dev/shm`` (memory, never the data disk; the system temp dir where
there is no ``/dev/shm``) holding only the keys of that one operation, with an agent
configured never to cache (``default-cache-ttl 0``, ``max-cache-ttl 0``), loopback
pinentry, ``--no-symkey-cache``, and the agent killed and the directory removed when
the operation ends. So a passphrase is used for one operation only: a wrong one fails
even right after a right one, and nothing outlives the request. The agent in such a
home re-protects an imported private key with a low S2K count (``s2k-count``): that
copy lives in memory for one request, and the key's own protection would otherwise
cost about a second per playback (measured with an RSA 3072 key).

Nothing here touches the database; :mod:`callvault.crypto.keys` keeps the keys.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

__all__ = [
    "HOME_PREFIX",
    "BadPassphrase",
    "InvalidKey",
    "KeyInfo",
    "KeyMismatch",
    "OpenPGPError",
    "PairCheck",
    "PassphraseRequired",
    "UnusableKey",
    "WrongKey",
    "check_pair",
    "encrypt_file",
    "failure",
    "gnupg_home",
    "inspect_key",
    "one_line",
    "open_sealed",
    "seal_text",
]

GPG = "gpg"
GPGCONF = "gpgconf"
#: Name prefix of the throwaway homes, followed by the process id (tests look for
#: leftovers by it).
HOME_PREFIX = "callvault-gpg-"
#: gpg reads and writes its pipes in blocks of this size.
BUFFER = 64 * 1024

_AGENT_CONF = (
    "default-cache-ttl 0\n"
    "max-cache-ttl 0\n"
    "allow-loopback-pinentry\n"
    "no-allow-external-cache\n"
    "disable-scdaemon\n"
    "s2k-count 65536\n"
)
_OPTIONS = (
    "--pinentry-mode",
    "loopback",
    "--no-symkey-cache",
    "--trust-model",
    "always",
    "--no-auto-key-retrieve",
)
_NO_COMPRESSION = ["--compress-algo", "none"]
# Symmetric sealing uses a 256-bit random-looking passphrase: S2K stretching adds
# nothing but time, so the cheapest iterated-and-salted setting is used.
_SEAL_ARGS = [*_NO_COMPRESSION, "--s2k-mode", "3", "--s2k-count", "1024", "--s2k-digest-algo"]
# python-gnupg logs the first 256 characters of every key it imports at DEBUG (key
# material, for a private key) and a WARNING for each gpg failure we expect and handle
# (a probe without passphrase, a wrong passphrase): our errors say what happened.
logging.getLogger("gnupg").setLevel(logging.ERROR)

_ALGORITHMS = {"1": "rsa", "2": "rsa", "3": "rsa", "16": "elg", "17": "dsa"}
_GPG_ERR_BAD_PASSPHRASE = 11
_GPG_ERR_NO_SECKEY = 17


class OpenPGPError(Exception):
    """gpg could not do it; the message says what and gpg's own reason."""


class InvalidKey(OpenPGPError):
    """The text is not one OpenPGP key."""


class UnusableKey(OpenPGPError):
    """The key cannot encrypt: expired, revoked, or without an encryption subkey."""


class KeyMismatch(OpenPGPError):
    """The private key is not the public key's other half."""


class PassphraseRequired(OpenPGPError):
    """The private key is protected by a passphrase and none was given."""


class BadPassphrase(OpenPGPError):
    """The passphrase given does not unlock the private key."""


class WrongKey(OpenPGPError):
    """The private key at hand does not open this ciphertext."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    fingerprint: str
    user_ids: tuple[str, ...]
    algorithm: str  # e.g. "rsa3072", "ed25519/cv25519" (primary/encryption subkey)
    created_at: datetime
    # The earliest of the primary key's expiry and its encryption subkeys' (None: never).
    expires_at: datetime | None
    can_encrypt: bool  # a valid (not expired or revoked) encryption subkey or primary
    revoked: bool
    has_secret: bool
    passphrase_protected: bool | None = None  # None: no secret key (or not known)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class PairCheck:
    """A public key whose private half was checked (T11)."""

    key: KeyInfo
    passphrase_protected: bool


class _GnuPG(gnupg.GPG):  # type: ignore[misc]
    """python-gnupg, keeping the result of the last call: when gpg stops reading early
    (no passphrase for a protected key), python-gnupg raises the broken pipe and drops
    the result whose status lines say why."""

    last_result: Any = None

    def _collect_output(self, process: Any, result: Any, *args: Any, **kwargs: Any) -> Any:
        self.last_result = result
        return super()._collect_output(process, result, *args, **kwargs)


def _home_parents() -> list[Path]:
    shm = Path("/dev/shm")
    found = [shm] if shm.is_dir() and os.access(shm, os.W_OK) else []
    return [*found, Path(tempfile.gettempdir())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_homes() -> int:
    """Remove the throwaway homes of processes that died without cleaning up (killed
    mid-decryption: a home holds an imported private key); returns how many. Called
    when the server starts."""
    removed = 0
    for parent in _home_parents():
        for home in parent.glob(f"{HOME_PREFIX}*"):
            pid_text = home.name.removeprefix(HOME_PREFIX).split("-", 1)[0]
            if not pid_text.isdigit() or _alive(int(pid_text)) or not home.is_dir():
                continue
            try:
                subprocess.run(
                    [GPGCONF, "--homedir", str(home), "--kill", "gpg-agent"],
                    capture_output=True,
                    check=False,
                    timeout=30,
                )
            finally:
                shutil.rmtree(home, ignore_errors=True)
            removed += 1
    return removed


@contextmanager
def gnupg_home() -> Iterator[Any]:
    """A ``gnupg.GPG`` on a throwaway GNUPGHOME, agent killed and home removed after."""
    home = tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{os.getpid()}-", dir=_home_parents()[0])
    try:
        (Path(home) / "gpg-agent.conf").write_text(_AGENT_CONF, encoding="ascii")
        # UTF-8 both ways: passphrases as gpg in a UTF-8 terminal would take them, user
        # ids as --with-colons gives them; gpg's own messages in plain English.
        gpg = _GnuPG(
            gpgbinary=GPG,
            gnupghome=home,
            options=list(_OPTIONS),
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANGUAGE": "en"},
            encoding="utf-8",
        )
        gpg.buffer_size = BUFFER
        yield gpg
    finally:
        try:
            subprocess.run(
                [GPGCONF, "--homedir", home, "--kill", "gpg-agent"],
                capture_output=True,
                check=False,
                timeout=30,
            )
        finally:  # the home holds an imported private key: removed whatever happened
            shutil.rmtree(home, ignore_errors=True)


def _status(result: Any) -> dict[str, list[str]]:
    """gpg's ``[GNUPG:]`` status lines by keyword (the rest of each line as the value)."""
    found: dict[str, list[str]] = {}
    for line in str(getattr(result, "stderr", "") or "").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, _, value = line[9:].partition(" ")
            found.setdefault(keyword, []).append(value)
    return found


def _reason(result: Any) -> str:
    """gpg's last human-readable line (``gpg: ...``), for error messages."""
    lines = [
        line.removeprefix("gpg: ").strip()
        for line in str(getattr(result, "stderr", "") or "").splitlines()
        if line.startswith("gpg: ")
    ]
    return lines[-1] if lines else (getattr(result, "status", "") or "no reason given")


def _error_codes(status: dict[str, list[str]]) -> set[int]:
    codes = set()
    for value in status.get("ERROR", []):
        parts = value.split()
        if len(parts) >= 2 and parts[1].isdigit():
            codes.add(int(parts[1]) & 0xFFFF)  # the code without gpg's error source
    return codes


def failure(result: Any, *, passphrase: str | None, what: str) -> OpenPGPError:
    """The error of a failed decryption, by kind (wrong passphrase, none given, ...)."""
    status = _status(result)
    codes = _error_codes(status)
    if "BAD_PASSPHRASE" in status or _GPG_ERR_BAD_PASSPHRASE in codes:
        if passphrase is None:
            return PassphraseRequired(f"{what}: the private key needs its passphrase")
        return BadPassphrase(f"{what}: wrong passphrase")
    if "NEED_PASSPHRASE" in status and passphrase is None:
        return PassphraseRequired(f"{what}: the private key needs its passphrase")
    if ("NO_SECKEY" in status or _GPG_ERR_NO_SECKEY in codes) and "DECRYPTION_OKAY" not in status:
        return WrongKey(f"{what}: the private key does not open it (encrypted to another key)")
    return OpenPGPError(f"{what}: {_reason(result)}")


def one_line(passphrase: str) -> bool:
    """Whether gpg can be given ``passphrase``: it reads one line from a pipe, so a line
    break (or NUL) cannot be part of it; such a passphrase is simply a wrong one."""
    if any(c in passphrase for c in "\r\n\0"):
        return False
    try:
        passphrase.encode("utf-8")  # a lone surrogate (possible in JSON) cannot be sent
    except UnicodeEncodeError:
        return False
    return True


def _when(epoch: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None


def _algorithm(entry: dict[str, Any]) -> str:
    if entry.get("curve"):
        return str(entry["curve"])
    algo = str(entry.get("algo", ""))
    return f"{_ALGORITHMS.get(algo, 'algo' + algo)}{entry.get('length', '')}"


def _key_info(entry: dict[str, Any], has_secret: bool) -> KeyInfo:
    # Validity "e" is expired, "r" revoked; an upper-case E in the key's capabilities
    # means the key as a whole can encrypt now (a usable encryption subkey or primary).
    subkeys = [
        info
        for info in (entry.get("subkey_info") or {}).values()
        if "e" in str(info.get("cap", "")) and info.get("trust") not in ("e", "r")
    ]
    primary_expiry = _when(entry.get("expires"))
    sub_expiry: datetime | None = None
    if subkeys and all(info.get("expires") for info in subkeys):
        sub_expiry = max(d for info in subkeys if (d := _when(info.get("expires"))) is not None)
    expiries = [d for d in (primary_expiry, sub_expiry) if d is not None]
    algorithm = _algorithm(entry)
    if subkeys and (sub := _algorithm(subkeys[0])) != algorithm:
        algorithm = f"{algorithm}/{sub}"
    return KeyInfo(
        fingerprint=str(entry["fingerprint"]).upper(),
        user_ids=tuple(str(uid) for uid in entry.get("uids", [])),
        algorithm=algorithm,
        created_at=_when(entry.get("date")) or datetime.fromtimestamp(0, UTC),
        expires_at=min(expiries) if expiries else None,
        can_encrypt="E" in str(entry.get("cap", "")),
        revoked=entry.get("trust") == "r",
        has_secret=has_secret,
    )


def _import(gpg: Any, armored: str, what: str) -> KeyInfo:
    if not armored.isascii():  # armour is ASCII; gpg cannot even be handed a lone surrogate
        raise InvalidKey(f"{what} is not an OpenPGP key: ASCII armour has no such characters")
    result = gpg.import_keys(armored)
    if not result.fingerprints:
        raise InvalidKey(f"{what} is not an OpenPGP key: gpg found no key in it")
    keys = gpg.list_keys()
    if len(keys) != 1:
        raise InvalidKey(f"{what} holds {len(keys)} keys; give exactly one")
    secret = {str(k["fingerprint"]).upper() for k in gpg.list_keys(secret=True)}
    entry = keys[0]
    return _key_info(entry, str(entry["fingerprint"]).upper() in secret)


def inspect_key(armored: str, what: str = "the key") -> KeyInfo:
    """Fingerprint, user ids, algorithm, expiry, whether ``armored`` holds a secret key
    and whether that is protected by a passphrase; ``InvalidKey`` when it is not exactly
    one OpenPGP key."""
    with gnupg_home() as gpg:
        info = _import(gpg, armored, what)
        if info.has_secret and info.can_encrypt:
            # Protected or not: does it open a probe encrypted to it without a passphrase?
            sealed = gpg.encrypt(b"probe", info.fingerprint, armor=False)
            opened = gpg.decrypt(sealed.data) if sealed.ok else None
            if opened is not None:
                info = dataclasses.replace(info, passphrase_protected=not opened.ok)
        return info


def check_pair(public: str, private: str | None, passphrase: str | None) -> PairCheck:
    """Check that ``public`` can encrypt and that ``private`` (if given) opens what is
    encrypted to it, unlocking it with ``passphrase`` when it has one (T11).

    The test is real: a random probe is encrypted to the public key in one home and
    decrypted with the private key in another. The passphrase is used for that and
    forgotten. Raises ``InvalidKey``, ``UnusableKey``, ``KeyMismatch``,
    ``PassphraseRequired`` or ``BadPassphrase``.
    """
    passphrase = passphrase or None
    probe = secrets.token_bytes(32)
    with gnupg_home() as gpg:
        key = _import(gpg, public, "the public key")
        if key.has_secret:
            raise InvalidKey("the public key file holds a private key: give it as the private key")
        if key.revoked or not key.can_encrypt:
            why = "is revoked" if key.revoked else "has no valid encryption subkey (expired?)"
            raise UnusableKey(f"key {key.fingerprint} {why}: recordings cannot be encrypted to it")
        sealed = gpg.encrypt(probe, key.fingerprint, armor=False, extra_args=_NO_COMPRESSION)
        if not sealed.ok:
            raise UnusableKey(f"cannot encrypt to key {key.fingerprint}: {_reason(sealed)}")
    if private is None:
        return PairCheck(key, False)
    with gnupg_home() as gpg:
        other = _import(gpg, private, "the private key")
        if not other.has_secret:
            raise InvalidKey("the private key file holds only a public key")
        if other.fingerprint != key.fingerprint:
            raise KeyMismatch(
                f"the private key ({other.fingerprint}) does not belong to the public key "
                f"({key.fingerprint})"
            )
        opened = gpg.decrypt(sealed.data)
        protected = not opened.ok
        if protected:
            problem = failure(opened, passphrase=None, what="the private key")
            if not isinstance(problem, PassphraseRequired):
                raise _mismatch(problem, key)
            if passphrase is None:
                raise PassphraseRequired(
                    "the private key is protected by a passphrase: give it to check the "
                    "pair (it is used for that check only, never stored)"
                )
            if not one_line(passphrase):
                raise BadPassphrase("the private key: wrong passphrase")
            opened = gpg.decrypt(sealed.data, passphrase=passphrase)
            if not opened.ok:
                raise _mismatch(failure(opened, passphrase=passphrase, what="the private key"), key)
    if opened.data != probe:
        raise KeyMismatch("the private key decrypted the probe into something else")
    return PairCheck(key, protected)


def _mismatch(problem: OpenPGPError, key: KeyInfo) -> OpenPGPError:
    if isinstance(problem, WrongKey):
        return KeyMismatch(
            f"the private key cannot decrypt what is encrypted to the public key "
            f"({key.fingerprint}): its encryption subkey is missing or different"
        )
    return problem


def encrypt_file(source: Path, target: Path, public_key: str, fingerprint: str) -> None:
    """Encrypt ``source`` to the key into ``target`` (binary OpenPGP, no compression),
    streaming; ``UnusableKey`` when gpg refuses the key (expired since it was set...)."""
    with gnupg_home() as gpg:
        imported = gpg.import_keys(public_key)
        if fingerprint.upper() not in {str(f).upper() for f in imported.fingerprints}:
            raise InvalidKey(f"the stored public key is not key {fingerprint}")
        try:
            result = gpg.encrypt_file(
                str(source),
                fingerprint,
                armor=False,
                output=str(target),
                extra_args=_NO_COMPRESSION,
            )
        except OSError:  # gpg refused before reading it all: its status lines say why
            result = gpg.last_result
            if result is None or result.ok:
                raise
        if not result.ok:
            status = _status(result)
            kind = UnusableKey if {"INV_RECP", "KEYEXPIRED"} & set(status) else OpenPGPError
            raise kind(f"cannot encrypt {source.name} to key {fingerprint}: {_reason(result)}")


def seal_text(text: str, passphrase: str) -> bytes:
    """``text`` encrypted symmetrically (AES-256) with ``passphrase``: binary OpenPGP."""
    with gnupg_home() as gpg:
        result = gpg.encrypt(
            text.encode("utf-8"),
            None,
            symmetric="AES256",
            passphrase=passphrase,
            armor=False,
            extra_args=[*_SEAL_ARGS, "SHA256"],
        )
        if not result.ok:
            raise OpenPGPError(f"cannot seal: {_reason(result)}")
        return bytes(result.data)


def open_sealed(blob: bytes, passphrase: str) -> str:
    """What :func:`seal_text` sealed; ``BadPassphrase`` for another passphrase."""
    with gnupg_home() as gpg:
        result = gpg.decrypt(blob, passphrase=passphrase)
        if not result.ok:
            raise failure(result, passphrase=passphrase, what="the sealed text")
        return bytes(result.data).decode("utf-8")
