"""Issue 5 as an administrator sets it up, against a real `callvault serve`, SIPp as the
SRC, moto's S3 server as the customer's bucket and the gpg CLI as the key holder.

The administrator sets an OpenPGP key (made by ``gpg --quick-gen-key``, RSA 3072 with a
passphrase), turns encryption on, moves storage to the bucket, all from the CLI while the
server runs. A call is recorded: the bucket gets the ciphertext (gpg decrypts it to an
Ogg file), the data directory keeps no audio and no plaintext capture, the player's API
decrypts it with the passphrase sent per request, ``recordings get`` too. Then the
retention policy runs out: the purge removes the object from the bucket and the call's
metadata stays; ``callvault verify`` finds the store consistent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.crypto.gpgkeys import Keyring, gpg_decrypt, keyring
from tests.e2e.harness import ServerProcess
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp
from tests.store.conftest import REGION, MotoServer, aws_environment, running_moto

ADMIN_PASSWORD = "a long admin password"


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def bucketed_server(tmp_path: Path, moto: MotoServer) -> Iterator[ServerProcess]:
    # Credentials from boto3's usual chain, as a customer's server gets them.
    server = ServerProcess(tmp_path / "data", extra_env=aws_environment(tmp_path)).start()
    yield server
    server.stop()


def _ok(done: Any) -> str:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def _uploaded(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    for call in calls:
        for recording in call["recordings"]:
            if recording["state"] == "ready" and recording["store"] == "s3":
                return recording
    return None


def test_an_encrypted_call_lives_in_the_bucket_and_goes_when_its_time_is_up(
    bucketed_server: ServerProcess, moto: MotoServer, keys: Keyring, tmp_path: Path
) -> None:
    server, key = bucketed_server, keys.rsa
    bucket = moto.new_bucket()
    public, private = tmp_path / "key.asc", tmp_path / "key.sec"
    public.write_text(key.public)
    private.write_text(key.private)
    assert key.passphrase
    _ok(
        server.cli(
            "keys", "set", "--public", str(public), "--private", str(private),
            "--passphrase", key.passphrase,
        )
    )  # fmt: skip
    _ok(
        server.cli(
            "settings", "set", "encryption.enabled", "true", "encryption.captures", "remove",
            "storage.backend", "s3", "storage.s3.bucket", bucket,
            "storage.s3.endpoint_url", moto.url, "storage.s3.region", REGION,
        )
    )  # fmt: skip
    _ok(server.cli("users", "add", "--username", "boss", "--password", ADMIN_PASSWORD,
                   "--role", "admin"))  # fmt: skip

    call = run_sipp(
        Scenario.call(multipart(sdp(("1", "2")), metadata_xml()), hold_ms=1500),
        server,
        tmp_path / "call",
    )
    assert call.wait() == 0, call.output()
    recording = server.wait_for(_uploaded, what="the recording in the bucket")
    assert recording["encrypted"] and recording["key_fingerprint"] == key.fingerprint
    assert recording["path"].endswith(".ogg.gpg")

    # The bucket holds the ciphertext; the key holder's gpg opens it.
    stored = moto.client().get_object(Bucket=bucket, Key="callvault/" + recording["path"])
    ciphertext = stored["Body"].read()
    assert len(ciphertext) == recording["size_bytes"]
    audio = gpg_decrypt(ciphertext, key)
    assert audio[:4] == b"OggS" and b"OggS" not in ciphertext[:64]
    # ... and the data directory keeps neither the audio nor the raw capture.
    left = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert not [p for p in left if p.suffix in (".ogg", ".gpg", ".pcap")], left

    # The player: the passphrase on each request, decrypted on the fly.
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as web:
        login = web.post("/api/v1/session", json={"username": "boss", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        url = f"/api/v1/recordings/{recording['id']}/audio"
        assert web.get(url).status_code == 401  # asks for the passphrase
        played = web.get(url, headers={"X-Key-Passphrase": key.passphrase})
        assert played.status_code == 200 and played.content == audio
        part = web.get(url, headers={"X-Key-Passphrase": key.passphrase, "Range": "bytes=100-"})
        assert part.status_code == 206 and part.content == audio[100:]
        assert web.get(url, headers={"X-Key-Passphrase": "not it"}).status_code == 403

    # The operator's copy: decrypted, or the stored ciphertext as it is.
    plain, sealed = tmp_path / "call.ogg", tmp_path / "call.ogg.gpg"
    without = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    without["AWS_EC2_METADATA_DISABLED"] = "true"
    denied = server.cli("recordings", "get", str(recording["id"]), "--output", str(plain),
                        "--passphrase", key.passphrase, env=without)  # fmt: skip
    assert denied.returncode == 1 and not plain.exists()
    assert f"cannot read s3://{bucket}/callvault/" in denied.stderr  # why, not a gpg riddle
    _ok(server.cli("recordings", "get", str(recording["id"]), "--output", str(plain),
                   "--passphrase", key.passphrase))  # fmt: skip
    assert plain.read_bytes() == audio
    _ok(server.cli("recordings", "get", str(recording["id"]), "--output", str(sealed),
                   "--encrypted"))  # fmt: skip
    assert sealed.read_bytes() == ciphertext
    assert json.loads(_ok(server.cli("verify", "--json")))["problems"] == []

    # Retention runs out: every copy goes, the call's metadata stays.
    _ok(server.cli("settings", "set", "retention.days", "1"))
    report = json.loads(_ok(server.cli("purge", "--as-of", "2100-01-01", "--json")))
    assert [r["id"] for r in report["recordings"]] == [recording["id"]]
    listed = moto.client().list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0
    (after,) = server.calls()
    (gone,) = after["recordings"]
    assert gone["state"] == "deleted" and gone["deleted_at"] is not None
    assert after["participants"]
