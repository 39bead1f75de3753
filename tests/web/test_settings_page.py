"""The admin settings page: every runtime setting as a field with its help, start-up
settings read-only with their source, saving through the form (CSRF token, only the
changed values, errors next to the field), reset, the file-name example and the
storage calculator."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from markupsafe import escape
from sqlalchemy import select

from callvault.config import SETTINGS
from callvault.db import AuditEvent, Database
from callvault.setting_values import parse_bool
from callvault.web.settings_view import MP3_WARNING, VORBIS_WARNING

RUNTIME = [s for s in SETTINGS if s.runtime]
STARTUP = [s for s in SETTINGS if not s.runtime]


class SettingsForm(HTMLParser):
    """The fields of ``#settings-form`` as a browser would submit them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.types: dict[str, str] = {}
        self._inside = False
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._inside = a.get("id") == "settings-form"
        elif not self._inside or "form" in a:  # a button of another form
            return
        elif tag == "input" and a.get("name"):
            self.types.setdefault(a["name"], a.get("type", "text"))
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((a["name"], a.get("value", "")))
            if a.get("type") == "checkbox":
                self.types[a["name"]] = "checkbox"
        elif tag == "select":
            self._select, self._options = a["name"], []
            self.types[a["name"]] = "select"
        elif tag == "option" and self._select:
            self._options.append(("", "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._select and self._options and not self._options[-1][0]:
            self._options[-1] = (data.strip(), self._options[-1][1])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "select" and self._select:
            chosen = [text for text, selected in self._options if selected] or [self._options[0][0]]
            self.fields.append((self._select, chosen[0]))
            self._select = None

    def with_values(self, **changes: str) -> list[tuple[str, str]]:
        """The form as submitted after setting fields (``recording__format="mp3"``)."""
        wanted = {name.replace("__", "."): value for name, value in changes.items()}
        return [(n, wanted.get(n, v) if not n.startswith("was:") else v) for n, v in self.fields]


@pytest.fixture
def admin_client(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="root", role="admin", scope="all")
    return login("root")


def _page(client: TestClient, path: str = "/admin/settings") -> str:
    reply = client.get(path)
    assert reply.status_code == 200, reply.text[:500]
    return reply.text


def _post(
    client: TestClient, fields: list[tuple[str, str]], path: str = "/admin/settings"
) -> Response:
    """POST the fields as a browser encodes a form (repeated names in order)."""
    return client.post(
        path,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def _api(client: TestClient, name: str) -> dict[str, object]:
    reply = client.get(f"/api/v1/settings/{name}")
    assert reply.status_code == 200
    body: dict[str, object] = reply.json()
    return body


def _audited(database: Database) -> list[str]:
    return database.read(
        lambda s: [
            str(row.target_id)
            for row in s.scalars(select(AuditEvent).where(AuditEvent.action == "settings.change"))
        ]
    )


def test_every_runtime_setting_is_a_field_with_its_help(admin_client: TestClient) -> None:
    page = _page(admin_client)
    form = SettingsForm(page)
    for setting in RUNTIME:
        assert f'id="f-{setting.name}"' in page, setting.name
        assert str(escape(setting.help)) in page, setting.name
        expected = "checkbox" if setting.parse is parse_bool else None
        if expected:
            assert form.types[setting.name] == expected, setting.name
    assert form.types["recording.format"] == "select"
    assert form.types["recording.mp3_bitrate"] == "select"
    assert form.types["recording.filename_template"] == "text"
    assert form.types["recording.opus_bitrate"] == "number"
    assert ("recording.format", "ogg") in form.fields
    assert "<legend>Recording</legend>" in page


def test_start_up_settings_are_listed_read_only_with_their_source(
    admin_client: TestClient,
) -> None:
    page = _page(admin_client)
    form = SettingsForm(page)
    for setting in STARTUP:
        row = re.search(rf'<tr id="startup-{re.escape(setting.name)}">(.*?)</tr>', page, re.S)
        assert row is not None, setting.name
        assert setting.name not in dict(form.fields)  # not a form field
    data_dir = re.search(r'<tr id="startup-data_dir">(.*?)</tr>', page, re.S)
    assert data_dir is not None and "the command line" in data_dir.group(1)
    listen = re.search(r'<tr id="startup-sip.listen">(.*?)</tr>', page, re.S)
    assert listen is not None and "0.0.0.0:5060" in listen.group(1)
    assert "the default" in listen.group(1)


def test_the_admin_navigation_links_the_page(
    admin_client: TestClient, make_user: Callable[..., int], login: Callable[..., TestClient]
) -> None:
    assert '<a href="/admin/settings">Settings</a>' in _page(admin_client, "/calls")
    make_user(username="agent", extension="7301")
    agent = login("agent")
    assert "/admin/settings" not in _page(agent, "/calls")
    assert agent.get("/admin/settings").status_code == 403


def test_a_visitor_goes_to_the_login_page(client: TestClient) -> None:
    reply = client.get("/admin/settings", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/login")


def test_saving_the_form_sends_only_the_changed_values(
    admin_client: TestClient, database: Database
) -> None:
    form = SettingsForm(_page(admin_client))
    data = form.with_values(recording__format="mp3", recording__mp3_bitrate="48")
    reply = _post(admin_client, data)
    assert reply.status_code == 303, reply.text[:500]
    assert reply.headers["location"] == "/admin/settings?done=saved"
    assert _api(admin_client, "recording.format")["value"] == "mp3"
    assert _api(admin_client, "recording.mp3_bitrate")["source"] == "database"
    assert sorted(_audited(database)) == ["recording.format", "recording.mp3_bitrate"]
    page = _page(admin_client, reply.headers["location"])
    assert "Saved. The new values apply from the next recording." in page
    assert ("recording.format", "mp3") in SettingsForm(page).fields


def test_a_checkbox_can_be_turned_off_and_on(admin_client: TestClient) -> None:
    boolean = next((s.name for s in RUNTIME if s.parse is parse_bool), None)
    if boolean is None:
        pytest.fail("no boolean runtime setting is declared to test the checkbox with")
    was = _api(admin_client, boolean)["value"]
    for expected in ("false", "true") if was == "true" else ("true", "false"):
        form = SettingsForm(_page(admin_client))
        # An unticked box sends only the hidden "false" before it; a ticked one adds "true".
        data = [(n, v) for n, v in form.fields if (n, v) != (boolean, "true")]
        if expected == "true":
            data.append((boolean, "true"))
        reply = _post(admin_client, data)
        assert reply.headers["location"] == "/admin/settings?done=saved", reply.text[:500]
        assert _api(admin_client, boolean)["value"] == expected


def test_nothing_changed_saves_nothing(admin_client: TestClient, database: Database) -> None:
    form = SettingsForm(_page(admin_client))
    reply = _post(admin_client, form.fields)
    assert reply.headers["location"] == "/admin/settings?done=unchanged"
    assert _audited(database) == []


def test_the_form_needs_the_csrf_token(admin_client: TestClient) -> None:
    form = SettingsForm(_page(admin_client))
    del admin_client.headers["X-CSRF-Token"]
    without = [(n, v) for n, v in form.with_values(recording__format="mp3") if n != "csrf_token"]
    assert _post(admin_client, without).status_code == 403
    with_token = form.with_values(recording__format="mp3")  # the hidden field, as a browser
    assert _post(admin_client, with_token).status_code == 303
    assert _api(admin_client, "recording.format")["value"] == "mp3"


def test_a_refused_save_shows_the_error_by_the_field_and_keeps_what_was_typed(
    admin_client: TestClient, database: Database
) -> None:
    form = SettingsForm(_page(admin_client))
    data = form.with_values(
        recording__format="wav", recording__codec="opus", recording__timezone="Europe/Warsaw"
    )
    reply = _post(admin_client, data)
    assert reply.status_code == 400
    error = re.search(r'<p class="error" id="e-recording.codec" role="alert">(.*?)</p>', reply.text)
    assert error is not None
    assert "recording.format wav, recording.codec must be auto or pcm" in error.group(1)
    assert 'id="e-recording.format"' in reply.text
    assert 'id="e-recording.timezone"' not in reply.text  # not part of the rule
    shown = dict(SettingsForm(reply.text).fields)
    assert (shown["recording.format"], shown["recording.codec"]) == ("wav", "opus")
    assert shown["recording.timezone"] == "Europe/Warsaw"
    assert _audited(database) == []  # all or none


def test_an_invalid_template_is_shown_next_to_its_field(admin_client: TestClient) -> None:
    form = SettingsForm(_page(admin_client))
    data = form.with_values(recording__filename_template="{YEAR}-{QUEUE}")
    reply = _post(admin_client, data)
    assert reply.status_code == 400
    assert 'id="e-recording.filename_template"' in reply.text
    assert "unknown variable {QUEUE}" in reply.text
    assert dict(SettingsForm(reply.text).fields)["recording.filename_template"] == (
        "{YEAR}-{QUEUE}"
    )


def test_reset_from_the_page(admin_client: TestClient) -> None:
    admin_client.put("/api/v1/settings", json={"values": {"recording.layout": "mono"}})
    page = _page(admin_client)
    assert 'form="reset-recording.layout"' in page
    assert 'form="reset-recording.format"' not in page  # nothing saved: nothing to reset
    token = dict(SettingsForm(page).fields)["csrf_token"]
    del admin_client.headers["X-CSRF-Token"]
    reply = admin_client.post(
        "/admin/settings/recording.layout/reset",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/admin/settings?done=reset"
    assert _api(admin_client, "recording.layout")["value"] == "stereo"
    refused = admin_client.post("/admin/settings/sip.listen/reset", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "sip.listen is a start-up setting" in refused.text


def test_the_page_shows_the_filename_example(admin_client: TestClient) -> None:
    admin_client.put(
        "/api/v1/settings", json={"values": {"recording.filename_template": "{NAME}-{ID}"}}
    )
    page = _page(admin_client)
    assert '<output id="filename-example" for="f-recording.filename_template">' in page
    assert ">Support-1542902923.24</output>" in page
    assert "/api/v1/settings/filename-example" in page  # the live preview's script


def test_the_page_shows_the_storage_calculator(admin_client: TestClient) -> None:
    page = _page(admin_client)
    assert '<strong id="calculator-turns">44,228</strong>' in page
    assert '<strong id="calculator-both">24,077</strong>' in page
    assert '<strong id="calculator-rule-hours">20,833</strong>' in page
    assert "250 GB ≈ 19,000 h" in page
    bigger = _page(admin_client, "/admin/settings?size_gb=1000")
    assert '<strong id="calculator-both">96,308</strong>' in bigger


def test_warnings_next_to_mp3_and_vorbis_fields(admin_client: TestClient) -> None:
    page = _page(admin_client)
    assert str(escape(VORBIS_WARNING)) in page
    mp3 = re.search(r'<p class="warning" id="w-recording.mp3_bitrate"( hidden)?>', page)
    assert mp3 is not None and mp3.group(1) == " hidden"  # 32 kbit/s: fine
    admin_client.put("/api/v1/settings", json={"values": {"recording.mp3_bitrate": "16"}})
    page = _page(admin_client)
    mp3 = re.search(r'<p class="warning" id="w-recording.mp3_bitrate"( hidden)?>', page)
    assert mp3 is not None and mp3.group(1) is None
    assert str(escape(MP3_WARNING)) in page
