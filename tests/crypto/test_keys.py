"""The keys in the database: set, rotate, seal the private key at rest, warn on expiry,
and refuse encryption.enabled until there is a key (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callvault.config import ConfigError
from callvault.crypto.keys import (
    active_key,
    key_access,
    key_warnings,
    keys_overview,
    prepare_key,
    private_key,
    save_key,
)
from callvault.crypto.openpgp import OpenPGPError, UnusableKey
from callvault.db import Database
from callvault.db.safety import EncryptionKey
from tests.crypto.gpgkeys import Key, Keyring, keyring
from tests.recording.golden import configure

SECRET = b"s" * 32
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


def set_key(database: Database, key: Key, *, private: bool = True) -> None:
    prepared = prepare_key(
        key.public,
        key.private if private else None,
        key.passphrase,
        secret=SECRET,
        now=NOW,
    )
    database.write(lambda s: save_key(s, prepared, actor="test"))


def test_setting_keys_makes_the_new_one_active_and_keeps_the_old(
    database: Database, keys: Keyring
) -> None:
    assert database.read(lambda s: keys_overview(s, NOW)) == {"active": None, "older": []}
    set_key(database, keys.ed)
    set_key(database, keys.rsa)
    state = database.read(lambda s: keys_overview(s, NOW))
    active = state["active"]
    assert active["fingerprint"] == keys.rsa.fingerprint
    assert active["user_ids"] == ["Recordings RSA <rsa@callvault.test>"]
    assert (active["algorithm"], active["private_key"], active["passphrase_protected"]) == (
        "rsa3072",
        True,
        True,
    )
    assert [k["fingerprint"] for k in state["older"]] == [keys.ed.fingerprint]
    assert state["older"][0]["active"] is False
    access = database.read(lambda s: key_access(s, keys.ed.fingerprint))
    assert access is not None and access.has_private_key and not access.passphrase_protected


def test_setting_an_old_key_again_reactivates_it_and_keeps_its_private_key(
    database: Database, keys: Keyring
) -> None:
    set_key(database, keys.ed)
    set_key(database, keys.other)
    set_key(database, keys.ed, private=False)
    assert database.read(lambda s: active_key(s).fingerprint) == keys.ed.fingerprint  # type: ignore[union-attr]
    rows = database.read(lambda s: s.scalars(select(EncryptionKey)).all())
    assert len(rows) == 2
    assert database.read(lambda s: private_key(s, keys.ed.fingerprint, SECRET)) == keys.ed.private


def test_the_private_key_is_sealed_at_rest_with_the_server_secret(
    database: Database, keys: Keyring
) -> None:
    set_key(database, keys.ed)
    stored = database.read(lambda s: s.scalars(select(EncryptionKey.private_key)).one())
    assert stored is not None
    assert b"PRIVATE KEY" not in stored and keys.ed.private.encode()[40:80] not in stored
    assert database.read(lambda s: private_key(s, keys.ed.fingerprint, SECRET)) == keys.ed.private
    with pytest.raises(OpenPGPError, match="server secret"):
        database.read(lambda s: private_key(s, keys.ed.fingerprint, b"t" * 32))


def test_a_public_key_alone_is_kept_without_a_private_one(
    database: Database, keys: Keyring
) -> None:
    set_key(database, keys.other, private=False)
    access = database.read(lambda s: key_access(s, keys.other.fingerprint))
    assert access is not None and not access.has_private_key
    assert database.read(lambda s: private_key(s, keys.other.fingerprint, SECRET)) is None


def test_an_expired_key_is_refused_and_a_soon_expiring_one_flagged(
    database: Database, keys: Keyring
) -> None:
    with pytest.raises(UnusableKey, match="has no valid encryption subkey"):
        prepare_key(keys.expired.public, None, None, secret=SECRET, now=NOW)
    set_key(database, keys.soon)
    (warning,) = database.read(lambda s: keys_overview(s, NOW))["active"]["warnings"]
    assert warning.startswith("expires in 9 days") or warning.startswith("expires in 10 days")
    later = NOW + timedelta(days=11)
    (expired,) = database.read(lambda s: keys_overview(s, later))["active"]["warnings"]
    assert expired.startswith("expired on ")


def test_expiry_warnings() -> None:
    assert key_warnings(None, NOW) == []
    assert key_warnings(NOW + timedelta(days=31), NOW) == []
    assert key_warnings(NOW + timedelta(days=30), NOW) == [
        f"expires in 30 days ({NOW + timedelta(days=30):%Y-%m-%d}): set a new key before then"
    ]
    assert key_warnings(NOW + timedelta(hours=3), NOW)[0].startswith("expires in 1 day ")
    assert key_warnings(NOW - timedelta(seconds=1), NOW)[0].startswith("expired on ")


def test_encryption_cannot_be_enabled_before_a_key_is_set(
    database: Database, keys: Keyring, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"encryption\.enabled needs an encryption key first"):
        configure(database, tmp_path, {"encryption.enabled": "true"})
    configure(database, tmp_path, {"encryption.captures": "remove"})  # other settings: fine
    set_key(database, keys.ed, private=False)
    configure(database, tmp_path, {"encryption.enabled": "true"})
