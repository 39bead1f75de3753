"""The settings API: every declared setting listed, runtime ones changed together (all or
none) and reset, start-up ones refused, changes audited, administrators only; the
file-name example and the storage calculator (REQUIREMENTS T1-T12, A7)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.config import SETTINGS, SETTINGS_BY_NAME, load_settings
from callvault.db import AuditEvent, Database
from callvault.db.models import Setting as StoredSetting
from callvault.recording.naming import FilenameTemplate
from callvault.runtime_settings import CODECS_BY_FORMAT, effective_settings
from callvault.setting_values import parse_bool
from callvault.web.app import create_web_app
from callvault.web.principal import WebContext
from callvault.web.storage_plan import KIB_PER_MINUTE, kib_per_minute

RUNTIME = [s.name for s in SETTINGS if s.runtime]
STARTUP = [s.name for s in SETTINGS if not s.runtime]


@pytest.fixture
def admin_client(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="root", role="admin", scope="all")
    return login("root")


def _listed(client: TestClient) -> dict[str, dict[str, Any]]:
    reply = client.get("/api/v1/settings")
    assert reply.status_code == 200, reply.text
    return {item["name"]: item for group in reply.json()["groups"] for item in group["settings"]}


def _audit(database: Database) -> list[AuditEvent]:
    return database.read(
        lambda s: list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "settings.change")
                .order_by(AuditEvent.id)
            )
        )
    )


def _stored(database: Database) -> dict[str, str]:
    return database.read(lambda s: {r.name: r.value for r in s.scalars(select(StoredSetting))})


def test_every_declared_setting_is_listed(admin_client: TestClient) -> None:
    listed = _listed(admin_client)
    assert set(listed) == set(SETTINGS_BY_NAME)
    for setting in SETTINGS:
        name, item = setting.name, listed[setting.name]
        assert item["runtime"] is setting.runtime, name
        assert item["kind"] == ("runtime" if setting.runtime else "start-up"), name
        assert item["help"] == setting.help, name
        assert item["group"] == (name.split(".")[0] if "." in name else "general"), name
        assert item["source"] in ("default", "command line"), name  # nothing saved, no file
        assert item["default"] == setting.default, name
        # Whatever the list offers as a choice is a value the setting accepts.
        for choice in item.get("choices") or []:
            setting.parse(choice)
        if setting.parse is parse_bool:
            assert item["type"] == "boolean", name
            assert item["parsed"] in (True, False), name
            assert item["value"] in ("true", "false"), name


def test_the_list_groups_by_prefix_in_declaration_order(admin_client: TestClient) -> None:
    groups = admin_client.get("/api/v1/settings").json()["groups"]
    names = [group["name"] for group in groups]
    expected = list(dict.fromkeys(n.split(".")[0] if "." in n else "general" for n in RUNTIME))
    assert [n for n in names if n in expected] == expected
    recording = next(g for g in groups if g["name"] == "recording")["settings"]
    by_name = {item["name"]: item for item in recording}
    assert by_name["recording.format"]["type"] == "choice"
    assert by_name["recording.format"]["choices"] == ["ogg", "mp3", "wav"]
    assert by_name["recording.format"]["value"] == "ogg"
    assert by_name["recording.mp3_bitrate"]["choices"] == ["8", "16", "24", "32", "48"]
    assert by_name["recording.opus_bitrate"].items() >= {"minimum": 6, "maximum": 64}.items()
    assert by_name["recording.opus_bitrate"]["parsed"] == 12
    assert by_name["recording.vorbis_quality"]["warning"].startswith("Vorbis couples")


def test_one_setting_and_an_unknown_one(admin_client: TestClient) -> None:
    reply = admin_client.get("/api/v1/settings/recording.filename_template")
    assert reply.status_code == 200
    assert reply.json()["value"] == SETTINGS_BY_NAME["recording.filename_template"].default
    missing = admin_client.get("/api/v1/settings/recording.colour")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_several_settings_change_at_once(admin_client: TestClient, ctx: WebContext) -> None:
    reply = admin_client.put(
        "/api/v1/settings",
        json={"values": {"recording.format": "mp3", "recording.mp3_bitrate": 48}},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["changed"] == ["recording.format", "recording.mp3_bitrate"]
    listed = _listed(admin_client)
    assert listed["recording.format"]["value"] == "mp3"
    assert listed["recording.mp3_bitrate"].items() >= {"parsed": 48, "source": "database"}.items()
    assert listed["recording.mp3_bitrate"]["updated_by"] == "root"
    # What the recorder reads from now on.
    now = ctx.database.read(lambda s: effective_settings(s, ctx.settings))
    assert (now["recording.format"], now["recording.mp3_bitrate"]) == ("mp3", 48)


def test_the_same_value_again_changes_nothing(admin_client: TestClient, database: Database) -> None:
    body = {"values": {"recording.layout": "mono"}}
    assert admin_client.put("/api/v1/settings", json=body).json()["changed"] == ["recording.layout"]
    assert admin_client.put("/api/v1/settings", json=body).json()["changed"] == []
    assert len(_audit(database)) == 1


def test_cross_setting_rules_refuse_the_whole_change(
    admin_client: TestClient, database: Database
) -> None:
    reply = admin_client.put(
        "/api/v1/settings",
        json={
            "values": {
                "recording.format": "wav",
                "recording.codec": "opus",
                "web.share_max_days": "9",
            }
        },
    )
    assert reply.status_code == 400
    problem = reply.json()
    assert "recording.codec = 'opus'" in problem["detail"]
    assert "with recording.format wav, recording.codec must be auto or pcm" in problem["detail"]
    assert set(problem["settings"]) == {"recording.format", "recording.codec"}
    assert _stored(database) == {}  # all or none: not even the share days
    assert _audit(database) == []
    # Together with a codec that fits, the same format is fine.
    fine = {"values": {"recording.format": "wav", "recording.codec": "alaw"}}
    assert admin_client.put("/api/v1/settings", json=fine).status_code == 200


def test_a_bad_value_names_the_setting_the_value_and_why(admin_client: TestClient) -> None:
    reply = admin_client.put("/api/v1/settings", json={"values": {"recording.opus_bitrate": "99"}})
    assert reply.status_code == 400
    problem = reply.json()
    assert problem["detail"] == (
        "recording.opus_bitrate = '99' is not valid: expected a whole number 6-64"
    )
    assert (problem["setting"], problem["value"]) == ("recording.opus_bitrate", "99")
    typo = admin_client.put("/api/v1/settings", json={"values": {"recording.formats": "mp3"}})
    assert typo.status_code == 400
    assert "did you mean 'recording.format'?" in typo.json()["detail"]
    empty = admin_client.put("/api/v1/settings", json={"values": {}})
    assert empty.status_code == 400


def test_control_characters_are_refused_on_both_databases(
    admin_client: TestClient, database: Database
) -> None:
    # PostgreSQL cannot store NUL; no setting needs control characters anyway.
    reply = admin_client.put(
        "/api/v1/settings", json={"values": {"recording.internal_aors": "sip:1*@a\u0000b"}}
    )
    assert reply.status_code == 400
    assert "control characters" in reply.json()["detail"]
    assert _stored(database) == {}


def test_start_up_settings_are_refused(admin_client: TestClient) -> None:
    for name in STARTUP:
        value = SETTINGS_BY_NAME[name].default or "x"
        reply = admin_client.put("/api/v1/settings", json={"values": {name: value}})
        assert reply.status_code == 400, name
        detail = reply.json()["detail"]
        assert f"{name} is a start-up setting" in detail
        assert "settings file" in detail
        assert admin_client.delete(f"/api/v1/settings/{name}").status_code == 400, name
    # Mixed with runtime ones: none of them is saved.
    mixed = {"values": {"recording.format": "mp3", "sip.listen": "0.0.0.0:5070"}}
    assert admin_client.put("/api/v1/settings", json=mixed).status_code == 400
    assert _listed(admin_client)["recording.format"]["value"] == "ogg"


def test_reset_brings_back_the_default_and_is_audited(
    admin_client: TestClient, database: Database
) -> None:
    admin_client.put("/api/v1/settings", json={"values": {"recording.stitch": "never"}})
    reply = admin_client.delete("/api/v1/settings/recording.stitch")
    assert reply.status_code == 200, reply.text
    assert reply.json().items() >= {"value": "transfers", "source": "default"}.items()
    assert _stored(database) == {}
    last = _audit(database)[-1]
    assert last.target_id == "recording.stitch"
    assert last.detail.items() >= {"old": "never", "new": "transfers", "reset": True}.items()
    assert admin_client.delete("/api/v1/settings/recording.nothing").status_code == 404


def test_a_reset_that_would_break_a_rule_is_refused(admin_client: TestClient) -> None:
    both = {"values": {"recording.format": "wav", "recording.codec": "pcm"}}
    assert admin_client.put("/api/v1/settings", json=both).status_code == 200
    reply = admin_client.delete("/api/v1/settings/recording.format")
    assert reply.status_code == 409
    assert "cannot reset recording.format" in reply.json()["detail"]
    assert _listed(admin_client)["recording.format"]["value"] == "wav"


def test_changes_are_audited_with_old_and_new_text(
    admin_client: TestClient, database: Database
) -> None:
    admin_client.put(
        "/api/v1/settings",
        json={
            "values": {
                "recording.timezone": "Europe/Warsaw",
                "mixer.windows": "mon-fri 20:00-06:00",
            }
        },
    )
    rows = {row.target_id: row for row in _audit(database)}
    assert set(rows) == {"recording.timezone", "mixer.windows"}
    zone = rows["recording.timezone"]
    assert (zone.actor, zone.target_type, zone.ip) == ("root", "setting", "testclient")
    assert (
        zone.detail.items()
        >= {"old": "UTC", "new": "Europe/Warsaw", "old_source": "default"}.items()
    )
    assert (
        rows["mixer.windows"].detail.items()
        >= {"old": "always", "new": "mon-fri 20:00-06:00"}.items()
    )


def test_a_saved_value_that_no_longer_parses_does_not_break_the_list(
    admin_client: TestClient, database: Database
) -> None:
    database.write(
        lambda s: s.add(StoredSetting(name="recording.opus_bitrate", value="500", updated_by="old"))
    )
    item = _listed(admin_client)["recording.opus_bitrate"]
    assert item["source"] == "default"
    assert "expected a whole number 6-64" in item["invalid"]
    fixed = {"values": {"recording.opus_bitrate": "16"}}
    assert admin_client.put("/api/v1/settings", json=fixed).status_code == 200
    assert _stored(database)["recording.opus_bitrate"] == "16"


def test_passwords_in_start_up_values_are_masked(
    database: Database, tmp_path: Path, make_user: Callable[..., int]
) -> None:
    url = "postgresql+psycopg://callvault:s3cret-pw@db.example.com/callvault"
    settings = load_settings({"data_dir": str(tmp_path), "database.url": url}, environ={})
    app = create_web_app(WebContext(database, tmp_path, settings, b"s" * 32))
    make_user(username="root", role="admin")
    with TestClient(app) as browser:
        login = {"username": "root", "password": "correct horse battery"}
        assert browser.post("/api/v1/session", json=login).status_code == 200
        reply = browser.get("/api/v1/settings/database.url")
        page = browser.get("/admin/settings")
    assert reply.json()["value"] == (
        "postgresql+psycopg://callvault:********@db.example.com/callvault"
    )
    assert reply.json()["source"] == "command line"
    assert "s3cret-pw" not in page.text
    assert "callvault:********@db.example.com" in page.text


def test_only_administrators(
    make_user: Callable[..., int], login: Callable[..., TestClient], client: TestClient
) -> None:
    make_user(username="root", role="admin")
    make_user(username="lead", role="supervisor", scope="all")
    lead, root = login("lead"), login("root")
    calls = [
        ("GET", "/api/v1/settings", None),
        ("GET", "/api/v1/settings/recording.format", None),
        ("PUT", "/api/v1/settings", {"values": {"recording.format": "mp3"}}),
        ("DELETE", "/api/v1/settings/recording.format", None),
        ("GET", "/api/v1/settings/filename-example", None),
        ("GET", "/api/v1/settings/storage-calculator?size_gb=1", None),
    ]
    reader = root.post("/api/v1/tokens", json={"name": "r", "scopes": ["calls:read"]})
    admin_token = root.post("/api/v1/tokens", json={"name": "a", "scopes": ["admin"]})
    for method, path, body in calls:
        assert lead.request(method, path, json=body).status_code == 403, path
        assert client.request(method, path, json=body).status_code == 401, path
        bearer = {"Authorization": f"Bearer {reader.json()['token']}"}
        assert client.request(method, path, json=body, headers=bearer).status_code == 403
    bearer = {"Authorization": f"Bearer {admin_token.json()['token']}"}
    put = {"values": {"recording.format": "mp3"}}
    assert client.put("/api/v1/settings", json=put, headers=bearer).status_code == 200
    assert lead.get("/api/v1/settings").json()["detail"] == "this needs an administrator"


def test_a_session_change_needs_the_csrf_token(admin_client: TestClient) -> None:
    del admin_client.headers["X-CSRF-Token"]
    reply = admin_client.put("/api/v1/settings", json={"values": {"recording.format": "mp3"}})
    assert reply.status_code == 403


# ---------------------------------------------------------------- file-name example


def test_the_filename_example_renders_a_sample_call_now(
    admin_client: TestClient, ctx: WebContext
) -> None:
    template = "{YEAR}-{MONTH}-{DAY}_{HOUR}.{MINUTE}-{PHONE_NUMBER}-{ID}-{NAME}"
    zone = ZoneInfo("Asia/Kolkata")  # +05:30: the hour and minute both move
    before = datetime.now(UTC)
    reply = admin_client.get(
        "/api/v1/settings/filename-example",
        params={"template": template, "timezone": "Asia/Kolkata"},
    )
    after = datetime.now(UTC)
    assert reply.status_code == 200, reply.text
    parsed = FilenameTemplate.parse(template)
    expected = {
        parsed.render(
            when=at, timezone=zone, phone_number="123456789", id="1542902923.24", name="Support"
        )
        for at in (before, after)
    }
    assert reply.json()["example"] in expected
    assert reply.json()["example"].endswith("-123456789-1542902923.24-Support")
    assert reply.json()["timezone"] == "Asia/Kolkata"


def test_the_filename_example_follows_the_saved_template(admin_client: TestClient) -> None:
    admin_client.put(
        "/api/v1/settings", json={"values": {"recording.filename_template": "call {ID} {NAME}"}}
    )
    reply = admin_client.get("/api/v1/settings/filename-example")
    assert reply.json()["example"] == "call 1542902923.24 Support"


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{YEAR}-{QUEUE}", "unknown variable {QUEUE}"),
        ("{YEAR}/{ID}", "a file name cannot contain any of"),
        ("{YEAR", "'{' at position 1 is not closed"),
        ("", "the file name template is empty"),
    ],
)
def test_an_invalid_template_is_a_400_saying_why(
    admin_client: TestClient, template: str, why: str
) -> None:
    reply = admin_client.get("/api/v1/settings/filename-example", params={"template": template})
    assert reply.status_code == 400
    assert why in reply.json()["detail"]
    assert reply.json()["setting"] == "recording.filename_template"


def test_an_invalid_time_zone_for_the_example(admin_client: TestClient) -> None:
    reply = admin_client.get("/api/v1/settings/filename-example", params={"timezone": "Mars/Base"})
    assert reply.status_code == 400
    assert "expected an IANA time zone name" in reply.json()["detail"]


# ---------------------------------------------------------------- storage calculator


def _calculate(client: TestClient, **params: Any) -> dict[str, Any]:
    reply = client.get("/api/v1/settings/storage-calculator", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_250_gb_in_the_default_format(admin_client: TestClient) -> None:
    body = _calculate(admin_client, size_gb=250)
    assert (body["format"], body["codec"], body["setting"]) == ("ogg", "opus", 12)
    assert body["label"] == "Ogg Opus 12 kbit/s per channel"
    # bench/quality.py, a real call: 169 KiB/min both talking, 92 KiB/min taking turns.
    assert body["kib_per_minute"] == {"turns": 92, "both_talking": 169}
    assert body["measured"] is True
    assert "bench/quality.py" in body["basis"]
    # 250e9 bytes / (169 * 1024 bytes per minute) / 60 = 24,077 h; at 92 KiB: 44,228 h.
    assert body["hours"] == {"turns": 44_228, "both_talking": 24_077}
    # The source system's 1 MB per 5 minutes: 250e9 / 200e3 bytes per minute / 60.
    assert body["rule_of_thumb"]["hours"] == 20_833
    assert "250 GB ≈ 19,000 h" in body["rule_of_thumb"]["text"]


def test_the_calculator_follows_the_saved_format(admin_client: TestClient) -> None:
    saved = {"values": {"recording.format": "mp3", "recording.mp3_bitrate": "16"}}
    admin_client.put("/api/v1/settings", json=saved)
    body = _calculate(admin_client, size_gb=1000)
    assert (body["codec"], body["label"]) == ("mp3", "MP3 16 kbit/s")
    assert body["kib_per_minute"] == {"turns": 118, "both_talking": 119}
    assert body["hours"]["both_talking"] == round(1000e9 / (119 * 1024) / 60)


def test_a_bit_rate_between_measured_ones_is_interpolated(admin_client: TestClient) -> None:
    body = _calculate(admin_client, size_gb=100, format="ogg", opus_bitrate="14")
    # Half way between 12 (169 / 92) and 16 kbit/s (213 / 117).
    assert body["kib_per_minute"] == {"turns": 104.5, "both_talking": 191}
    assert body["measured"] is False
    assert body["basis"] == "interpolated between the measured 12 and 16"


def test_each_wav_codec_and_a_budget(admin_client: TestClient) -> None:
    pcm = _calculate(admin_client, size_gb=250, format="wav")
    assert (pcm["codec"], pcm["kib_per_minute"]["both_talking"]) == ("pcm", 1875)
    gsm = _calculate(admin_client, budget=23, price_per_gb=0.023, format="wav", codec="gsm")
    assert gsm["size_gb"] == pytest.approx(1000)
    assert gsm["hours"]["turns"] == round(1000e9 / (191 * 1024) / 60)


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"size_gb": 1, "format": "wav", "codec": "opus"}, "does not fit recording.format wav"),
        ({"size_gb": 1, "format": "flac"}, "expected one of ogg, mp3, wav"),
        ({"size_gb": 1, "mp3_bitrate": "20"}, "expected one of 8, 16, 24, 32, 48"),
        ({"budget": 5}, "give size_gb, or budget and price_per_gb"),
    ],
)
def test_the_calculator_refuses_what_cannot_be_recorded(
    admin_client: TestClient, params: dict[str, Any], why: str
) -> None:
    reply = admin_client.get("/api/v1/settings/storage-calculator", params=params)
    assert reply.status_code == 400
    assert why in reply.json()["detail"]


def _allowed(name: str) -> list[int]:
    parse = SETTINGS_BY_NAME[name].parse
    found = []
    for value in range(0, 65):
        with contextlib.suppress(ValueError):
            found.append(parse(str(value)))
    return found


@pytest.mark.parametrize(
    ("codec", "setting"),
    [
        ("opus", "recording.opus_bitrate"),
        ("mp3", "recording.mp3_bitrate"),
        ("vorbis", "recording.vorbis_quality"),
    ],
)
def test_every_allowed_setting_has_a_measured_or_interpolated_size(
    codec: str, setting: str
) -> None:
    sizes = []
    for value in _allowed(setting):
        both, turns, measured, basis = kib_per_minute(codec, value)
        assert 0 < turns <= both, (value, basis)
        assert measured or basis.startswith("interpolated"), (value, basis)
        sizes.append(both)
    assert sizes == sorted(sizes)  # more bits never fit more hours


def test_the_table_covers_every_codec_a_format_can_hold() -> None:
    codecs = {codec for allowed in CODECS_BY_FORMAT.values() for codec in allowed}
    assert codecs == set(KIB_PER_MINUTE)
    assert KIB_PER_MINUTE["opus"][12][:2] == (169, 92)  # README's default row
