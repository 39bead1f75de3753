"""A real browser on a real ``callvault serve``: an agent finds, plays and shares a call.

SIPp and two paced RTP senders make a SIPREC call through the server; once its
recording is ready, Debian's Chromium (driven by Playwright, no browser download) logs
in with the agent's extension and does what the agent would: filter the list, open the
call by its start time, play, seek from the waveform, move to another page while the
audio goes on (REQUIREMENTS D6: no document reload, the same <audio> keeps playing),
download the file, share it, and open the share link as an anonymous visitor.
Screenshots of each page are kept in the test's temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
EXTENSION = "2001"
PASSWORD = "agent password 2001"
CUSTOMER = "+15550100"
SECONDS = 12.0  # long enough to seek to the middle and still be playing after a page change


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _ready_call(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    for call in calls:
        if call["recordings"] and all(r["state"] == "ready" for r in call["recordings"]):
            return call
    return None


def _record_a_call(server: ServerProcess, workdir: Path) -> dict[str, Any]:
    """Agent 2001 talks to a customer; both streams carry a tone for SECONDS."""
    metadata = metadata_xml(
        participants=(
            ("cA==", f"sip:{EXTENSION}@pbx.example.com", "Agent 2001"),
            ("cB==", f"sip:{CUSTOMER}@carrier.example.net", "Customer"),
        )
    )
    scenario = Scenario.call(
        multipart(sdp(("1", "2")), metadata), hold_ms=int(SECONDS * 1000) + 500, play=False
    )
    sipp = run_sipp(scenario, server, workdir)
    ports = sipp.answer_ports()
    senders = [
        RtpSender(("127.0.0.1", ports[0]), frequency=440.0, seconds=SECONDS, ssrc=0x1111),
        RtpSender(("127.0.0.1", ports[1]), frequency=1000.0, seconds=SECONDS, ssrc=0x2222),
    ]
    for sender in senders:
        sender.start()
    assert sipp.wait() == 0, sipp.output()
    for sender in senders:
        sender.join()
    call: dict[str, Any] = server.wait_for(_ready_call, what="a ready recording")
    return call


def _audio(page: Page, expression: str) -> Any:
    return page.evaluate(
        f"(() => {{ const a = document.getElementById('player-audio'); return {expression}; }})()"
    )


def _wait_audio(page: Page, condition: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        f"() => {{ const a = document.getElementById('player-audio'); return {condition}; }}",
        timeout=timeout,
    )


def test_an_agent_finds_plays_downloads_and_shares_a_call(
    server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    call = _record_a_call(server, tmp_path / "sipp")
    recording = call["recordings"][0]
    added = server.cli(
        "users", "add", "--username", "agent", "--password", PASSWORD, "--extension", EXTENSION
    )
    assert added.returncode == 0, added.stderr
    base = f"http://127.0.0.1:{server.http_port}"

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Logging in with the extension lands on the calls list.
    page.goto(f"{base}/calls")
    assert "/login" in page.url
    page.fill("input[name=username]", EXTENSION)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    page.wait_for_url(f"{base}/calls")
    row = page.locator(f"tr[data-call='{call['id']}']")
    assert row.count() == 1
    # From here on no page may reload the document: this survives only if none does.
    page.evaluate("window.__stillTheSamePage = true")
    page.evaluate("document.getElementById('player-audio').__theSameElement = true")

    # Filtering: the URL carries the filter; a filter the call fails hides it.
    page.fill("input[name=min_duration]", "3600")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/calls?*min_duration=3600*")
    page.wait_for_selector("text=No calls match")
    assert row.count() == 0
    page.fill("input[name=min_duration]", "")
    page.fill("input[name=q]", CUSTOMER[2:8])
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"**/calls?q={CUSTOMER[2:8]}")
    assert row.count() == 1
    assert CUSTOMER in row.inner_text()
    page.screenshot(path=str(tmp_path / "calls.png"), full_page=True)

    # The filter saved under a name comes back as a quick link, and goes when deleted.
    page.fill("form[data-save-filter] input[name=name]", "Customer calls")
    page.click("form[data-save-filter] button")
    quick = page.locator(".saved a", has_text="Customer calls")
    quick.wait_for()
    assert quick.get_attribute("href") == f"/calls?q={CUSTOMER[2:8]}"
    page.click("header nav a[href='/calls']")
    page.wait_for_url(f"{base}/calls")
    quick.click()
    page.wait_for_url(f"**/calls?q={CUSTOMER[2:8]}")
    page.click("button[aria-label='Delete the saved filter Customer calls']")
    quick.wait_for(state="detached")

    # The call's start time opens it; its waveform is drawn from the stored peaks.
    row.locator("a.start-time").click()
    page.wait_for_url(f"{base}/calls/{call['id']}")
    page.wait_for_selector(f".waveform[data-recording='{recording['id']}'][data-drawn]")
    assert page.locator(f".waveform[data-recording='{recording['id']}'] canvas").count() == 2

    # Play: the docked player's clock runs.
    page.locator(f"button[data-play][data-recording='{recording['id']}']").first.click()
    _wait_audio(page, "!a.paused && a.currentTime > 0.5")
    assert "Agent 2001 → Customer" in page.inner_text("#player-title")

    # A click at 50 % of the waveform seeks to the middle of the recording.
    page.evaluate(
        "window.__seeks = []; const a = document.getElementById('player-audio');"
        "a.addEventListener('seeked', () => window.__seeks.push(a.currentTime))"
    )
    canvas = page.locator(f".waveform[data-recording='{recording['id']}'] canvas").first
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_function("() => window.__seeks.length > 0")
    duration = _audio(page, "a.duration")
    assert abs(duration - recording["duration_s"]) < 0.5
    assert abs(page.evaluate("window.__seeks[0]") - duration * 0.5) < 0.5
    page.screenshot(path=str(tmp_path / "call.png"), full_page=True)

    # Another page through a link: same document, same <audio>, still playing onwards.
    before = _audio(page, "a.currentTime")
    page.click("header nav a[href='/calls']")
    page.wait_for_url(f"{base}/calls")
    page.wait_for_selector(f"tr[data-call='{call['id']}']")
    assert page.evaluate("window.__stillTheSamePage === true")
    assert _audio(page, "a.__theSameElement === true")
    _wait_audio(page, f"!a.paused && a.currentTime > {before + 0.5}")
    assert page.title().startswith("Calls")

    # Download from the list: the very bytes `callvault recordings get` gives.
    with page.expect_download() as started:
        page.locator(f"tr[data-call='{call['id']}'] a.download").click()
    download = started.value
    assert download.suggested_filename == recording["file_name"]
    saved = tmp_path / "downloaded"
    download.save_as(saved)
    expected = tmp_path / "expected"
    got = server.cli("recordings", "get", str(recording["id"]), "--output", str(expected))
    assert got.returncode == 0, got.stderr
    assert saved.read_bytes() == expected.read_bytes()

    # Back to the call with the browser's back button: still no reload.
    page.go_back()
    page.wait_for_url(f"{base}/calls/{call['id']}")
    page.wait_for_selector(".waveform[data-drawn]")
    assert page.evaluate("window.__stillTheSamePage === true")

    # A click on the call's timeline plays from that moment of the call.
    track = page.locator(".timeline .tl-track")
    box = track.bounding_box()
    assert box is not None
    page.evaluate("window.__seeks = []")
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.wait_for_function("() => window.__seeks.length > 0")
    total = float(page.locator(".timeline").get_attribute("data-duration") or "0")
    offset = float(page.locator(".timeline .tl-segment").get_attribute("data-offset") or "0")
    assert abs(page.evaluate("window.__seeks[0]") - (0.25 * total - offset)) < 0.3
    _wait_audio(page, "!a.paused")

    # Share the recording; an anonymous visitor's browser plays the link.
    page.locator(f"button[data-share$='/recordings/{recording['id']}/share']").click()
    shared = page.locator(f"section[aria-labelledby='recording-{recording['id']}'] .share-result")
    shared.locator("input").wait_for()
    assert shared.is_visible()
    url = shared.locator("input").input_value()
    assert url.startswith(f"{base}/s/") or url.startswith("/s/"), url

    visitor = browser.new_context()
    assert visitor.cookies() == []
    public = visitor.new_page()
    public.set_default_timeout(15_000)
    public.goto(url if url.startswith("http") else f"{base}{url}")
    assert "/login" not in public.url
    public.wait_for_selector("audio")
    public.evaluate("document.querySelector('audio').play()")
    public.wait_for_function(
        "() => { const a = document.querySelector('audio');"
        " return !a.paused && a.currentTime > 0.5; }"
    )
    public.screenshot(path=str(tmp_path / "share.png"), full_page=True)
    visitor.close()
    context.close()
