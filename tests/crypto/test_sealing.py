"""The finalize job with encryption on: recordings and raw captures encrypted to the
active key (gpg opens them), no plaintext left behind, rotation, names kept."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callvault.config import load_settings
from callvault.crypto.sealing import sealed_name
from callvault.db import Database
from callvault.db.models import Recording, Segment
from callvault.recording.finalize import finalize_recording
from callvault.recording.stitch import make_stitched, request_stitch
from tests.crypto.gpgkeys import Key, Keyring, gpg_decrypt, keyring
from tests.crypto.test_keys import set_key
from tests.media import payloads
from tests.recording.golden import (
    CUBE,
    RECORDER,
    SBC,
    START,
    captured_session,
    configure,
    decode_file,
    peak,
    settings_for,
    tone_packets,
    two_tones,
)


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


def _row(database: Database, recording_id: int) -> Recording:
    found = database.read(lambda s: s.get(Recording, recording_id))
    assert found is not None
    return found


def _segment(database: Database, segment_id: int) -> Segment:
    found = database.read(lambda s: s.get(Segment, segment_id))
    assert found is not None
    return found


def _captured(database: Database, tmp_path: Path) -> tuple[Path, int, int]:
    """The Cisco two-tone call captured: (data directory, recording id, segment id)."""
    data = tmp_path / "data"
    recording_id, segment_id = captured_session(database)
    two_tones(data)
    return data, recording_id, segment_id


def _run(database: Database, data: Path, recording_id: int, **kw: Any) -> str:
    return finalize_recording(database, data, recording_id, settings=settings_for(data), **kw)


def _encrypt_with(database: Database, data: Path, key: Key, **more: str) -> None:
    set_key(database, key)
    configure(database, data, {"encryption.enabled": "true", **more})


def _expire_active_key(database: Database, keys: Keyring) -> None:
    """As if the active key had expired since it was set."""
    from callvault.db.safety import EncryptionKey

    def swap(s: Any) -> None:
        row = s.scalars(select(EncryptionKey)).one()
        row.fingerprint, row.public_key = keys.expired.fingerprint, keys.expired.public

    database.write(swap)


def _opened(data: Path, recording: Recording, key: Key, tmp_path: Path) -> Path:
    """The recording decrypted by the gpg CLI, as the key holder would."""
    plain = gpg_decrypt((data / str(recording.path)).read_bytes(), key)
    out = tmp_path / "opened" / str(recording.file_name)
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(plain)
    return out


def test_a_finished_recording_is_encrypted_and_its_plaintext_removed(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    data, recording_id, segment_id = _captured(database, tmp_path)
    _encrypt_with(database, data, keys.ed, **{"encryption.captures": "keep"})
    assert _run(database, data, recording_id) == "ready"

    row = _row(database, recording_id)
    name = f"2023-11-14_22.13.20-7300-{recording_id}.ogg"
    assert (row.encrypted, row.key_fingerprint) == (True, keys.ed.fingerprint)
    assert row.file_name == name  # downloads as audio keep the audio's name
    assert row.path == f"recordings/2023/11/14/{name}.gpg"
    stored = data / row.path
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == row.sha256
    assert stored.stat().st_size == row.size_bytes
    assert sorted(p.name for p in stored.parent.iterdir()) == [f"{name}.gpg"]
    assert row.peaks and row.analysis["talk"]  # made before encryption, kept in clear

    opened = _opened(data, row, keys.ed, tmp_path)
    assert opened.read_bytes()[:4] == b"OggS"
    facts = row.analysis["plaintext"]
    assert facts["size_bytes"] == opened.stat().st_size
    assert facts["sha256"] == hashlib.sha256(opened.read_bytes()).hexdigest()
    _codec, rate, pcm = decode_file(opened)
    assert peak(pcm[0, int(0.8 * rate) : int(2.3 * rate)], rate) == pytest.approx(500, abs=8)
    assert peak(pcm[1, int(0.8 * rate) : int(2.3 * rate)], rate) == pytest.approx(1500, abs=8)
    assert _segment(database, segment_id).capture_state == "plain"  # keep


def test_the_capture_is_encrypted_once_the_recording_is_made(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    data, recording_id, segment_id = _captured(database, tmp_path)
    capture = data / "captures" / f"{CUBE}.pcap"
    original = capture.read_bytes()
    _encrypt_with(database, data, keys.rsa)  # encryption.captures: encrypt by default
    assert _run(database, data, recording_id) == "ready"

    segment = _segment(database, segment_id)
    assert (segment.capture_state, segment.capture_path) == (
        "encrypted",
        f"captures/{CUBE}.pcap.gpg",
    )
    assert not capture.exists()
    assert gpg_decrypt((data / segment.capture_path).read_bytes(), keys.rsa) == original
    # Nothing can be made again from it: the ready recording stays as it is.
    before = _row(database, recording_id)
    assert _run(database, data, recording_id, force=True) == "skipped"
    after = _row(database, recording_id)
    assert (after.state, after.sha256, after.path) == ("ready", before.sha256, before.path)


def test_a_capture_whose_encryption_fails_is_kept_and_sealed_next_time(
    database: Database, tmp_path: Path, keys: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A raw capture is the only copy of the call: a failed encryption (the disk full,
    # gpg gone) must not remove it, and the next run seals it.
    from callvault.crypto import sealing
    from callvault.crypto.sealing import settle_captures

    data, recording_id, segment_id = _captured(database, tmp_path)
    capture = data / "captures" / f"{CUBE}.pcap"
    original = capture.read_bytes()
    _encrypt_with(database, data, keys.ed)
    real = sealing.encrypt_file

    def disk_full(source: Path, target: Path, public_key: str, fingerprint: str) -> None:
        if source.suffix == ".pcap":
            target.write_bytes(b"half")
            raise OSError(28, "No space left on device")
        real(source, target, public_key, fingerprint)

    monkeypatch.setattr(sealing, "encrypt_file", disk_full)
    assert _run(database, data, recording_id) == "ready"
    assert capture.read_bytes() == original  # kept, and no half ciphertext beside it
    assert sorted(p.name for p in capture.parent.iterdir()) == [capture.name]
    assert _segment(database, segment_id).capture_state == "plain"

    monkeypatch.setattr(sealing, "encrypt_file", real)
    call_id = _row(database, recording_id).call_id
    assert settle_captures(database, data, call_id, settings_for(data)) == 1
    segment = _segment(database, segment_id)
    assert segment.capture_state == "encrypted" and not capture.exists()
    assert gpg_decrypt((data / str(segment.capture_path)).read_bytes(), keys.ed) == original


def test_a_remake_that_cannot_be_encrypted_leaves_the_older_file_alone(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    # Made in clear first; then encryption is on with a key that has expired since: the
    # remake fails, and the file the recording had is still there, untouched.
    data, recording_id, _ = _captured(database, tmp_path)
    assert _run(database, data, recording_id) == "ready"
    made = _row(database, recording_id)
    older = (data / str(made.path)).read_bytes()
    _encrypt_with(database, data, keys.ed, **{"encryption.captures": "keep"})

    _expire_active_key(database, keys)
    assert _run(database, data, recording_id, force=True) == "failed"
    after = _row(database, recording_id)  # still playable, as it was, saying why
    assert (after.state, after.path, after.sha256) == ("ready", made.path, made.sha256)
    assert after.error is not None and "the earlier file stays" in after.error
    assert (data / str(made.path)).read_bytes() == older
    left = sorted(p.name for p in (data / str(made.path)).parent.iterdir())
    assert left == [str(made.file_name)]  # no plaintext or partial ciphertext beside it


def test_captures_can_be_removed_instead(database: Database, tmp_path: Path, keys: Keyring) -> None:
    data, recording_id, segment_id = _captured(database, tmp_path)
    _encrypt_with(database, data, keys.ed, **{"encryption.captures": "remove"})
    assert _run(database, data, recording_id) == "ready"
    assert _segment(database, segment_id).capture_state == "removed"
    assert not (data / "captures" / f"{CUBE}.pcap").exists()
    assert not list((data / "captures").iterdir())


def test_captures_of_a_transferred_call_wait_for_its_stitched_recording(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    data = tmp_path / "data"
    first, first_segment = captured_session(database)
    second, second_segment = captured_session(
        database, start=START + 4.0, first_port=30004, capture="captures/second.pcap"
    )
    two_tones(data)
    payloads.write_capture(
        data / "captures" / "second.pcap",
        [
            (SBC, (RECORDER, 30004), tone_packets(700, t0=START + 4.5, ssrc=3)),
            (SBC, (RECORDER, 30006), tone_packets(1500, t0=START + 4.5, ssrc=4)),
        ],
    )
    _encrypt_with(database, data, keys.ed)
    assert _run(database, data, first) == "ready"
    assert _segment(database, first_segment).capture_state == "plain"  # the stitch needs it
    assert _run(database, data, second) == "ready"
    whole = database.read(
        lambda s: s.scalars(select(Recording).where(Recording.kind == "call")).one()
    )
    assert whole.state == "ready" and whole.encrypted and str(whole.path).endswith(".ogg.gpg")
    assert [_segment(database, i).capture_state for i in (first_segment, second_segment)] == [
        "encrypted",
        "encrypted",
    ]
    _codec, rate, pcm = decode_file(_opened(data, whole, keys.ed, tmp_path))
    assert peak(pcm[0, int(5.0 * rate) : int(6.0 * rate)], rate) == pytest.approx(700, abs=8)
    # Stitching again would need the captures: refused, the stitched file stays.
    again = database.write(lambda s: request_stitch(s, whole.call_id, only_if_complete=False))
    assert again == whole.id
    base = settings_for(data)
    assert make_stitched(database, data, whole.id, base, START, force=True) == "failed"
    kept = _row(database, whole.id)
    assert (kept.state, kept.sha256) == ("ready", whole.sha256)


def test_new_recordings_use_the_new_key_after_rotation(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    data, before, _ = _captured(database, tmp_path)
    _encrypt_with(database, data, keys.ed, **{"encryption.captures": "keep"})
    assert _run(database, data, before) == "ready"
    set_key(database, keys.other)  # rotation
    assert _run(database, data, before, force=True) == "ready"  # a remake: the new key
    assert _row(database, before).key_fingerprint == keys.other.fingerprint
    _opened(data, _row(database, before), keys.other, tmp_path)


def test_encryption_on_without_a_key_fails_and_writes_nothing(
    database: Database, tmp_path: Path
) -> None:
    data, recording_id, _ = _captured(database, tmp_path)
    # Only the settings file or the environment can turn it on without a key.
    base = load_settings({"data_dir": str(data), "encryption.enabled": "true"}, environ={})
    assert finalize_recording(database, data, recording_id, settings=base) == "failed"
    row = _row(database, recording_id)
    assert row.error is not None and "no encryption key is set" in row.error
    assert not (data / "recordings").exists()


def test_an_expired_key_fails_the_job_and_leaves_no_plaintext(
    database: Database, tmp_path: Path, keys: Keyring
) -> None:
    data, recording_id, _ = _captured(database, tmp_path)
    _encrypt_with(database, data, keys.ed)

    _expire_active_key(database, keys)
    assert _run(database, data, recording_id) == "failed"
    error = _row(database, recording_id).error
    assert error is not None and error.startswith("UnusableKey: cannot encrypt")
    assert "Unusable public key" in error
    assert [p for p in data.rglob("*") if p.is_file() and "recordings" in p.parts] == []


def test_an_encrypted_name_taken_by_another_recording_gets_a_suffix(
    database: Database, tmp_path: Path
) -> None:
    recording_id, _ = captured_session(database)

    def check(s: Any) -> tuple[str, str]:
        row = s.get(Recording, recording_id)
        other = Recording(call_id=row.call_id, kind="segment", path="recordings/x/a.ogg.gpg")
        s.add(other)
        s.flush()
        return sealed_name(s, row, "recordings/x/a.ogg", "a.ogg", tmp_path)

    assert database.write(check) == ("recordings/x/a-1.ogg", "a-1.ogg")
