"""Playing and downloading encrypted recordings through the real app (T8-T12).

Recordings are made by the finalize job with encryption on; what the app sends is
compared with what the gpg CLI makes of the stored file. During a playback, nothing in
the data directory or the temp dirs holds the decrypted audio.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from callvault.crypto.openpgp import BUFFER, HOME_PREFIX
from callvault.crypto.stream import QUEUE_CHUNKS
from callvault.recording.finalize import finalize_recording
from callvault.web.principal import WebContext
from tests.crypto.gpgkeys import (
    PASSPHRASE,
    UTF8_PASSPHRASE,
    Key,
    Keyring,
    gpg_decrypt,
    keyring,
    leftover_homes,
)
from tests.crypto.test_keys import set_key
from tests.recording.golden import (
    PORTS,
    START,
    captured_session,
    configure,
    settings_for,
    tone_packets,
    two_tones,
    write_session_capture,
)
from tests.web.conftest import PASSWORD
from tests.web.test_recordings_api import audit_rows, stored

PASS = {"X-Key-Passphrase": PASSPHRASE}


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


@pytest.fixture
def owner(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="agent", extension="7301")
    return login("agent")


def encrypted_recording(ctx: WebContext, key: Key, *, private: bool = True, **settings: str) -> int:
    """The Cisco two-tone call, finalized with encryption on to ``key``; its id."""
    set_key(ctx.database, key, private=private)
    configure(
        ctx.database,
        ctx.data_dir,
        {"encryption.enabled": "true", "encryption.captures": "keep", **settings},
    )
    recording_id, _ = captured_session(ctx.database)
    if not (ctx.data_dir / "captures").exists():
        two_tones(ctx.data_dir)
    state = finalize_recording(
        ctx.database, ctx.data_dir, recording_id, settings=settings_for(ctx.data_dir)
    )
    assert state == "ready"
    return recording_id


def plaintext(ctx: WebContext, recording_id: int, key: Key) -> bytes:
    """The audio as the key holder's gpg opens it."""
    row = stored(ctx, recording_id)
    return gpg_decrypt((ctx.data_dir / str(row.path)).read_bytes(), key)


def test_the_metadata_says_encrypted_and_how_to_open_it(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.rsa)
    body = owner.get(f"/api/v1/recordings/{recording_id}").json()
    assert (body["encrypted"], body["key_fingerprint"]) == (True, keys.rsa.fingerprint)
    assert (body["decryptable"], body["passphrase_required"]) == (True, True)
    assert body["encrypted_download_url"].endswith("/download?as=encrypted")
    assert body["file_name"].endswith(".ogg") and body["peaks"]["channels"]


def test_a_key_without_passphrase_plays_as_before_with_ranges(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.ed)
    audio = plaintext(ctx, recording_id, keys.ed)
    url = f"/api/v1/recordings/{recording_id}/audio"
    whole = owner.get(url)
    assert whole.status_code == 200 and whole.content == audio
    assert whole.headers["content-type"] == "audio/ogg"
    assert whole.headers["etag"] == f'"{hashlib.sha256(audio).hexdigest()}"'
    part = owner.get(url, headers={"Range": "bytes=1000-2999"})
    assert part.status_code == 206 and part.content == audio[1000:3000]
    assert part.headers["content-range"] == f"bytes 1000-2999/{len(audio)}"
    tail = owner.get(url, headers={"Range": "bytes=-100"})
    assert tail.content == audio[-100:]
    again = owner.get(url, headers={"If-None-Match": whole.headers["etag"]})
    assert again.status_code == 304
    past = owner.get(url, headers={"Range": f"bytes={len(audio)}-"})
    assert past.status_code == 416
    download = owner.get(f"/api/v1/recordings/{recording_id}/download")
    assert download.content == audio
    name = stored(ctx, recording_id).file_name
    assert download.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert leftover_homes() == []  # every decryption, sent or not, cleaned up


def test_a_passphrase_is_asked_for_each_request_and_a_wrong_one_refused(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.rsa)
    audio = plaintext(ctx, recording_id, keys.rsa)
    url = f"/api/v1/recordings/{recording_id}/audio"
    missing = owner.get(url)
    assert missing.status_code == 401
    assert missing.json()["passphrase_required"] is True
    assert owner.get(url, headers=PASS).content == audio
    wrong = owner.get(url, headers={"X-Key-Passphrase": "not it"})  # right after the right one
    assert wrong.status_code == 403 and wrong.json()["detail"] == "wrong passphrase"
    assert owner.get(url).status_code == 401  # nothing was cached
    denied = audit_rows(ctx.database, "recording.play.denied")
    assert [(d.actor, d.target_id, d.detail["reason"]) for d in denied] == [
        ("agent", str(recording_id), "wrong passphrase")
    ]
    assert len(audit_rows(ctx.database, "recording.play")) == 1
    assert owner.get(f"/api/v1/recordings/{recording_id}/download", headers=PASS).content == audio


def test_a_passphrase_beyond_ascii_works_as_typed(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    # HTTP headers are bytes: the player and curl send the passphrase's UTF-8 bytes.
    recording_id = encrypted_recording(ctx, keys.utf8)
    audio = plaintext(ctx, recording_id, keys.utf8)
    url = f"/api/v1/recordings/{recording_id}/audio"
    typed = {"X-Key-Passphrase": UTF8_PASSPHRASE.encode()}
    assert owner.get(url, headers=typed).content == audio
    unaccented = {"X-Key-Passphrase": "zazolc gesla jazn"}
    assert owner.get(url, headers=unaccented).status_code == 403


def test_without_the_private_key_only_the_gpg_file_downloads(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.ed, private=False)
    body = owner.get(f"/api/v1/recordings/{recording_id}").json()
    assert (body["decryptable"], body["passphrase_required"]) == (False, False)
    audio = owner.get(f"/api/v1/recordings/{recording_id}/audio")
    assert audio.status_code == 409 and "download" in audio.json()["detail"]
    assert audio.json()["encrypted_download_url"] == body["encrypted_download_url"]
    assert owner.get(f"/api/v1/recordings/{recording_id}/download").status_code == 409
    sealed = owner.get(body["encrypted_download_url"])
    row = stored(ctx, recording_id)
    assert sealed.status_code == 200
    assert sealed.content == (ctx.data_dir / str(row.path)).read_bytes()
    assert sealed.headers["content-type"] == "application/pgp-encrypted"
    assert sealed.headers["content-disposition"] == f'attachment; filename="{row.file_name}.gpg"'
    assert gpg_decrypt(sealed.content, keys.ed)[:4] == b"OggS"
    part = owner.get(body["encrypted_download_url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == sealed.content[10:20]
    (download,) = audit_rows(ctx.database, "recording.download")
    assert download.detail["encrypted"] is True


def test_a_recording_made_before_rotation_plays_with_the_old_key(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    before = encrypted_recording(ctx, keys.ed)
    set_key(ctx.database, keys.other)
    after, _ = captured_session(
        ctx.database, start=START + 10, first_port=30010, capture="captures/later.pcap"
    )
    write_session_capture(
        ctx.data_dir,
        {30010: tone_packets(700, t0=START + 10.5), 30012: tone_packets(900, t0=START + 10.5)},
        corpus="later",
    )
    state = finalize_recording(
        ctx.database, ctx.data_dir, after, settings=settings_for(ctx.data_dir)
    )
    assert state == "ready"
    assert stored(ctx, before).key_fingerprint == keys.ed.fingerprint
    assert stored(ctx, after).key_fingerprint == keys.other.fingerprint
    for recording_id, key in ((before, keys.ed), (after, keys.other)):
        reply = owner.get(f"/api/v1/recordings/{recording_id}/audio")
        assert reply.status_code == 200
        assert reply.content == plaintext(ctx, recording_id, key)


def _new_files(roots: list[Path], since: float) -> list[Path]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                try:
                    if path.is_file() and path.stat().st_mtime >= since:
                        found.append(path)
                except OSError:
                    continue  # gone meanwhile (someone else's temp file)
    return found


def test_no_plaintext_reaches_the_disk_during_playback(
    ctx: WebContext, owner: TestClient, keys: Keyring
) -> None:
    # 90 s at 64 kbit/s a channel: about 900 KB, more than twice what the stream and
    # gpg's pipes hold, so gpg is still at work while the response waits for us.
    write_session_capture(
        ctx.data_dir,
        {
            PORTS[0]: tone_packets(500, t0=START, seconds=90),
            PORTS[1]: tone_packets(1500, t0=START, seconds=90, ssrc=2),
        },
    )
    recording_id, _ = captured_session(ctx.database, seconds=90)
    set_key(ctx.database, keys.ed)
    configure(
        ctx.database,
        ctx.data_dir,
        {
            "encryption.enabled": "true",
            "encryption.captures": "keep",
            "recording.opus_bitrate": "64",
        },
    )
    state = finalize_recording(
        ctx.database, ctx.data_dir, recording_id, settings=settings_for(ctx.data_dir)
    )
    assert state == "ready"
    audio = plaintext(ctx, recording_id, keys.ed)
    assert len(audio) > 2 * (QUEUE_CHUNKS + 2) * BUFFER
    # What identifies this audio: its first Ogg page (the stream's random serial number
    # and the page's CRC) and a stretch from its middle.
    needles = [audio[:58], audio[len(audio) // 2 : len(audio) // 2 + 64]]
    roots = [ctx.data_dir, Path(tempfile.gettempdir()), Path("/dev/shm")]
    since = time.time() - 1

    with owner.stream("GET", f"/api/v1/recordings/{recording_id}/audio") as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        received = next(chunks)
        homes = [
            p
            for p in Path("/dev/shm").iterdir()
            if p.name.startswith(f"{HOME_PREFIX}{os.getpid()}-")
        ]
        assert len(homes) == 1  # gpg is at work right now, in its throwaway home
        assert _new_files(homes, since)  # its files are among those scanned
        for path in _new_files([*roots, *homes], since):
            try:
                content = path.read_bytes()
            except OSError:
                continue
            assert not any(needle in content for needle in needles), path
            if path.is_relative_to(ctx.data_dir) or path.is_relative_to(homes[0]):
                assert b"OggS" not in content, path
        received += b"".join(chunks)
    assert received == audio
    assert leftover_homes() == []


def test_share_links_play_when_no_passphrase_is_needed(
    ctx: WebContext, owner: TestClient, client: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.ed)
    url = owner.post(f"/api/v1/recordings/{recording_id}/share", json={}).json()["url"]
    path = url.split("://", 1)[-1].split("/", 1)[1]
    reply = client.get(f"/{path}/audio")
    assert reply.status_code == 200
    assert reply.content == plaintext(ctx, recording_id, keys.ed)


def test_share_links_cannot_play_what_needs_a_passphrase(
    ctx: WebContext, owner: TestClient, client: TestClient, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.rsa)
    url = owner.post(f"/api/v1/recordings/{recording_id}/share", json={}).json()["url"]
    path = url.split("://", 1)[-1].split("/", 1)[1]
    reply = client.get(f"/{path}/audio")
    assert reply.status_code == 409
    assert "cannot be played from a share link" in reply.text


# -- the player in a real browser -----------------------------------------------------------


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The app on a real HTTP server (uvicorn, loopback, a free port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_the_player_asks_for_the_passphrase_and_plays_from_memory(
    ctx: WebContext, owner: TestClient, live: str, keys: Keyring
) -> None:
    recording_id = encrypted_recording(ctx, keys.rsa)
    call_id = stored(ctx, recording_id).call_id
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{live}/login")
            page.fill("input[name=username]", "agent")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.login button")
            page.wait_for_url(f"{live}/calls")
            page.goto(f"{live}/calls/{call_id}")
            play = page.locator(f"button[data-play][data-recording='{recording_id}']").first

            play.click()  # a wrong passphrase: said, nothing plays
            page.fill("dialog.passphrase-dialog input[type=password]", "not it")
            page.click("dialog.passphrase-dialog button[value=ok]")
            page.wait_for_function(
                "() => document.querySelector('[data-status]')"
                ".textContent.includes('wrong passphrase')"
            )
            assert page.evaluate("document.getElementById('player-audio').src") == ""

            play.click()
            page.fill("dialog.passphrase-dialog input[type=password]", PASSPHRASE)
            page.click("dialog.passphrase-dialog button[value=ok]")
            page.wait_for_function(
                "() => { const a = document.getElementById('player-audio');"
                " return a.src.startsWith('blob:') && a.currentTime > 0.2; }"
            )
            assert page.locator("dialog").count() == 0  # the passphrase went with it
            assert PASSPHRASE not in page.content()
        finally:
            browser.close()
    plays = audit_rows(ctx.database, "recording.play")
    assert len(plays) == 1 and plays[0].detail["decrypted"] is True
    assert len(audit_rows(ctx.database, "recording.play.denied")) == 1
