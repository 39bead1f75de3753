"""OpenPGP through gpg: keys made by the gpg CLI, interop both ways, passphrases that
never outlive one operation, streaming decryption that leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callvault.crypto.openpgp import (
    HOME_PREFIX,
    BadPassphrase,
    InvalidKey,
    KeyMismatch,
    OpenPGPError,
    PassphraseRequired,
    UnusableKey,
    WrongKey,
    check_pair,
    encrypt_file,
    inspect_key,
    open_sealed,
    seal_text,
)
from callvault.crypto.stream import PlaintextStream
from tests.crypto.gpgkeys import (
    PASSPHRASE,
    UTF8_PASSPHRASE,
    Key,
    Keyring,
    gpg_decrypt,
    gpg_encrypt,
    gpg_packets,
    keyring,
    leftover_homes,
)


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


def _chunks(data: bytes, size: int = 100_000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _encrypted(tmp_path: Path, data: bytes, key: Key) -> bytes:
    source, target = tmp_path / "plain.bin", tmp_path / "plain.bin.gpg"
    source.write_bytes(data)
    encrypt_file(source, target, key.public, key.fingerprint)
    return target.read_bytes()


def test_inspect_reads_what_gpg_made(keys: Keyring) -> None:
    rsa = inspect_key(keys.rsa.public)
    assert rsa.fingerprint == keys.rsa.fingerprint
    assert rsa.user_ids == ("Recordings RSA <rsa@callvault.test>",)
    assert rsa.algorithm == "rsa3072"
    assert (rsa.expires_at, rsa.can_encrypt, rsa.has_secret, rsa.revoked) == (
        None,
        True,
        False,
        False,
    )
    ed = inspect_key(keys.ed.public)
    assert ed.algorithm == "ed25519/cv25519"
    secret = inspect_key(keys.ed.private)
    assert (secret.has_secret, secret.passphrase_protected) == (True, False)
    assert inspect_key(keys.rsa.private).passphrase_protected is True
    assert rsa.passphrase_protected is None  # a public key: nothing to protect


def test_expiry_is_read_from_the_key(keys: Keyring) -> None:
    now = datetime.now(UTC)
    soon = inspect_key(keys.soon.public)
    assert soon.expires_at is not None
    assert timedelta(days=9) < soon.expires_at - now <= timedelta(days=10, minutes=5)
    old = inspect_key(keys.expired.public)
    assert old.expires_at == datetime(2020, 12, 31, tzinfo=UTC)
    assert old.expired(now) and not old.can_encrypt


def test_text_that_is_not_one_key_is_refused(keys: Keyring) -> None:
    with pytest.raises(InvalidKey, match="is not an OpenPGP key"):
        inspect_key("hello, this is not a key")
    with pytest.raises(InvalidKey, match="holds 2 keys; give exactly one"):
        inspect_key(keys.ed.public + keys.other.public)


def test_a_pair_with_its_passphrase_is_checked_for_real(keys: Keyring) -> None:
    checked = check_pair(keys.rsa.public, keys.rsa.private, PASSPHRASE)
    assert checked.key.fingerprint == keys.rsa.fingerprint
    assert checked.passphrase_protected
    plain = check_pair(keys.ed.public, keys.ed.private, None)
    assert not plain.passphrase_protected
    assert not check_pair(keys.ed.public, None, None).passphrase_protected


def test_a_wrong_passphrase_fails_right_after_a_right_one(keys: Keyring) -> None:
    check_pair(keys.rsa.public, keys.rsa.private, PASSPHRASE)
    with pytest.raises(BadPassphrase, match="wrong passphrase"):
        check_pair(keys.rsa.public, keys.rsa.private, "not it")
    with pytest.raises(PassphraseRequired, match="protected by a passphrase"):
        check_pair(keys.rsa.public, keys.rsa.private, None)
    with pytest.raises(BadPassphrase):
        check_pair(keys.rsa.public, keys.rsa.private, PASSPHRASE + "\nmore")


def test_passphrases_and_user_ids_beyond_ascii(keys: Keyring, tmp_path: Path) -> None:
    checked = check_pair(keys.utf8.public, keys.utf8.private, UTF8_PASSPHRASE)
    assert checked.passphrase_protected
    assert checked.key.user_ids == ("Zażółć <utf8@callvault.test>",)
    data = os.urandom(50_000)
    ciphertext = _encrypted(tmp_path, data, keys.utf8)
    with PlaintextStream.open(_chunks(ciphertext), keys.utf8.private, UTF8_PASSPHRASE) as stream:
        assert b"".join(stream) == data
    with pytest.raises(BadPassphrase):
        PlaintextStream.open(_chunks(ciphertext), keys.utf8.private, "zazolc gesla jazn")


def test_a_mismatched_pair_is_refused(keys: Keyring) -> None:
    with pytest.raises(KeyMismatch, match=r"does not belong to the public key"):
        check_pair(keys.rsa.public, keys.other.private, None)
    with pytest.raises(InvalidKey, match="holds only a public key"):
        check_pair(keys.ed.public, keys.ed.public, None)
    with pytest.raises(InvalidKey, match="holds a private key"):
        check_pair(keys.ed.private, None, None)


def test_an_expired_key_cannot_be_encrypted_to(keys: Keyring) -> None:
    with pytest.raises(UnusableKey, match="has no valid encryption subkey"):
        check_pair(keys.expired.public, None, None)


@pytest.mark.parametrize("name", ["rsa", "ed"])
def test_gpg_decrypts_what_callvault_encrypts(keys: Keyring, tmp_path: Path, name: str) -> None:
    key = getattr(keys, name)
    data = os.urandom(300_000)
    ciphertext = _encrypted(tmp_path, data, key)
    assert gpg_decrypt(ciphertext, key) == data
    packets = gpg_packets(ciphertext)
    assert "pubkey enc packet" in packets
    assert "compressed packet" not in packets  # audio does not compress: none asked


@pytest.mark.parametrize("name", ["rsa", "ed"])
def test_callvault_decrypts_what_gpg_encrypts(keys: Keyring, name: str) -> None:
    key = getattr(keys, name)
    data = os.urandom(200_000)
    ciphertext = gpg_encrypt(data, key)  # gpg's defaults: compressed
    with PlaintextStream.open(_chunks(ciphertext), key.private, key.passphrase) as stream:
        assert b"".join(stream) == data


def test_streaming_decryption_and_its_passphrase_rules(keys: Keyring, tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    ciphertext = _encrypted(tmp_path, data, keys.rsa)
    right = PlaintextStream.open(_chunks(ciphertext), keys.rsa.private, PASSPHRASE)
    assert b"".join(right) == data
    with pytest.raises(BadPassphrase, match="wrong passphrase"):
        PlaintextStream.open(_chunks(ciphertext), keys.rsa.private, "guess")
    with pytest.raises(PassphraseRequired):
        PlaintextStream.open(_chunks(ciphertext), keys.rsa.private, None)
    with pytest.raises(WrongKey, match="encrypted to another key"):
        PlaintextStream.open(_chunks(ciphertext), keys.other.private, None)
    assert leftover_homes() == []


def test_closing_a_stream_early_ends_gpg_and_removes_its_home(
    keys: Keyring, tmp_path: Path
) -> None:
    data = os.urandom(3_000_000)
    ciphertext = _encrypted(tmp_path, data, keys.ed)
    stream = PlaintextStream.open(_chunks(ciphertext), keys.ed.private, None)
    first = next(stream)
    assert data.startswith(first)
    assert len(leftover_homes()) == 1  # gpg is waiting for us: bounded, not done
    stream.close()
    assert leftover_homes() == []
    with pytest.raises(StopIteration):
        next(stream)


def test_a_cut_ciphertext_fails_in_the_stream(keys: Keyring, tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    ciphertext = _encrypted(tmp_path, data, keys.ed)
    stream = PlaintextStream.open(_chunks(ciphertext[:600_000]), keys.ed.private, None)
    with pytest.raises(OpenPGPError):
        b"".join(stream)
    assert leftover_homes() == []


def test_sealed_text_opens_only_with_its_passphrase() -> None:
    sealed = seal_text("a private key, say", "k" * 64)
    assert b"a private key" not in sealed
    assert open_sealed(sealed, "k" * 64) == "a private key, say"
    with pytest.raises(OpenPGPError):
        open_sealed(sealed, "j" * 64)


def test_homes_left_by_killed_processes_are_removed_and_live_ones_kept() -> None:
    # A process killed mid-decryption leaves its home (with the imported private key).
    from callvault.crypto.openpgp import _home_parents, remove_stale_homes

    dead = subprocess.Popen(["true"])
    dead.wait()
    parent = _home_parents()[0]
    stale = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{dead.pid}-", dir=parent))
    (stale / "private-keys-v1.d").mkdir()
    live = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{os.getpid()}-", dir=parent))
    try:
        assert remove_stale_homes() >= 1
        assert not stale.exists() and live.exists()
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
