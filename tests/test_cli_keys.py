"""``callvault keys set|show`` and ``callvault recordings get`` of encrypted recordings,
as an operator runs them, with keys made by the gpg CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from callvault.db import Database
from callvault.db.models import Recording
from tests.cli_support import drop_callvault_environment, migrated_database, run
from tests.crypto.gpgkeys import PASSPHRASE, Key, Keyring, gpg_decrypt, keyring
from tests.recording.golden import captured_session, two_tones


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_callvault_environment(monkeypatch)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data: Path) -> Database:
    return migrated_database(data)


def key_files(tmp_path: Path, key: Key) -> tuple[str, str]:
    public, private = tmp_path / f"{key.fingerprint}.asc", tmp_path / f"{key.fingerprint}.sec"
    public.write_text(key.public)
    private.write_text(key.private)
    return str(public), str(private)


def set_keys(data: Path, tmp_path: Path, key: Key, *more: str) -> Result:
    public, private = key_files(tmp_path, key)
    return run(data, "keys", "set", "--public", public, "--private", private, *more)


def show(data: Path) -> dict[str, object]:
    result = run(data, "keys", "show", "--json")
    assert result.exit_code == 0, result.output
    shown: dict[str, object] = json.loads(result.stdout)
    return shown


def test_keys_set_checks_the_pair_and_show_lists_them(
    data: Path, db: Database, tmp_path: Path, keys: Keyring
) -> None:
    assert run(data, "keys", "show").stdout == (
        "encryption of new recordings: off\nno key is set (callvault keys set --public FILE)\n"
    )
    missing = set_keys(data, tmp_path, keys.rsa)
    assert missing.exit_code == 2
    assert "key not set: the private key is protected by a passphrase" in missing.output
    wrong = set_keys(data, tmp_path, keys.rsa, "--passphrase", "guess")
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.output
    public, _ = key_files(tmp_path, keys.rsa)
    _, other_private = key_files(tmp_path, keys.other)
    mismatched = run(data, "keys", "set", "--public", public, "--private", other_private)
    assert mismatched.exit_code == 2 and "does not belong to the public key" in mismatched.output
    assert show(data)["active"] is None

    done = set_keys(data, tmp_path, keys.rsa, "--passphrase", PASSPHRASE)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"active key {keys.rsa.fingerprint} (Recordings RSA")
    assert "protected by a passphrase" in done.stdout
    soon_public, _ = key_files(tmp_path, keys.soon)
    rotated = run(data, "keys", "set", "--public", soon_public)
    assert rotated.exit_code == 0
    assert "warning: expires in" in rotated.stderr

    state = show(data)
    active, older = state["active"], state["older"]
    assert isinstance(active, dict) and isinstance(older, list)
    assert (active["fingerprint"], active["private_key"]) == (keys.soon.fingerprint, False)
    assert [k["fingerprint"] for k in older] == [keys.rsa.fingerprint]
    text = run(data, "keys", "show").stdout
    assert f"active key:\n  fingerprint: {keys.soon.fingerprint}" in text
    assert "WARNING:     expires in" in text
    assert "private key: in the system, needs its passphrase" in text  # the older key
    for stored in data.glob("callvault.db*"):  # the database and its WAL
        assert PASSPHRASE.encode() not in stored.read_bytes()


def test_an_expired_key_is_refused(data: Path, db: Database, tmp_path: Path, keys: Keyring) -> None:
    public, _ = key_files(tmp_path, keys.expired)
    result = run(data, "keys", "set", "--public", public)
    assert result.exit_code == 2 and "has no valid encryption subkey" in result.output


def test_encryption_is_refused_until_a_key_is_set(
    data: Path, db: Database, tmp_path: Path, keys: Keyring
) -> None:
    refused = run(data, "settings", "set", "encryption.enabled", "true")
    assert refused.exit_code == 2
    assert "encryption.enabled needs an encryption key first" in refused.output
    public, _ = key_files(tmp_path, keys.ed)
    assert run(data, "keys", "set", "--public", public).exit_code == 0
    assert run(data, "settings", "set", "encryption.enabled", "true").exit_code == 0
    assert show(data)["encryption_enabled"] is True


def _encrypted_recording(
    data: Path, db: Database, tmp_path: Path, key: Key, *more: str
) -> Recording:
    assert set_keys(data, tmp_path, key, *more).exit_code == 0
    assert run(data, "settings", "set", "encryption.enabled", "true").exit_code == 0
    recording_id, _ = captured_session(db)
    two_tones(data)
    assert run(data, "recordings", "remake", str(recording_id)).exit_code == 0
    row = db.read(lambda s: s.get(Recording, recording_id))
    assert row is not None and row.encrypted
    return row


def test_recordings_get_decrypts_or_gives_the_ciphertext(
    data: Path, db: Database, tmp_path: Path, keys: Keyring
) -> None:
    row = _encrypted_recording(data, db, tmp_path, keys.rsa, "--passphrase", PASSPHRASE)
    stored = (data / str(row.path)).read_bytes()
    audio = gpg_decrypt(stored, keys.rsa)
    out = tmp_path / "out.ogg"
    ident = str(row.id)

    needs = run(data, "recordings", "get", ident, "--output", str(out))
    assert needs.exit_code == 1 and "give --passphrase" in needs.output
    wrong = run(data, "recordings", "get", ident, "--output", str(out), "--passphrase", "x")
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
    assert not out.exists()
    done = run(data, "recordings", "get", ident, "--output", str(out), "--passphrase", PASSPHRASE)
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == audio and audio[:4] == b"OggS"
    sealed = tmp_path / "out.ogg.gpg"
    raw = run(data, "recordings", "get", ident, "--output", str(sealed), "--encrypted")
    assert raw.exit_code == 0 and sealed.read_bytes() == stored
    piped = run(data, "recordings", "get", ident, "-o", "-", "--passphrase", PASSPHRASE)
    assert piped.stdout_bytes == audio


def test_without_the_private_key_get_says_to_use_encrypted(
    data: Path, db: Database, tmp_path: Path, keys: Keyring
) -> None:
    public, _ = key_files(tmp_path, keys.ed)
    assert run(data, "keys", "set", "--public", public).exit_code == 0
    assert run(data, "settings", "set", "encryption.enabled", "true").exit_code == 0
    recording_id, _ = captured_session(db)
    two_tones(data)
    assert run(data, "recordings", "remake", str(recording_id)).exit_code == 0
    out = tmp_path / "x.ogg"
    result = run(data, "recordings", "get", str(recording_id), "--output", str(out))
    assert result.exit_code == 1 and "use --encrypted" in result.output
    assert not out.exists()
    sealed = run(data, "recordings", "get", str(recording_id), "--output", str(out), "--encrypted")
    assert sealed.exit_code == 0
    assert gpg_decrypt(out.read_bytes(), keys.ed)[:4] == b"OggS"


def test_a_plain_recording_is_not_encrypted(data: Path, db: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(db)
    two_tones(data)
    assert run(data, "recordings", "remake", str(recording_id)).exit_code == 0
    out = tmp_path / "plain.ogg"
    refused = run(data, "recordings", "get", str(recording_id), "-o", str(out), "--encrypted")
    assert refused.exit_code == 1 and "is not encrypted" in refused.output
    assert run(data, "recordings", "get", str(recording_id), "-o", str(out)).exit_code == 0
    assert out.read_bytes()[:4] == b"OggS"
