"""File names from the template (REQUIREMENTS T7): parsing, rendering, sanitising, suffixes."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.recording.naming import (
    DEFAULT_TEMPLATE,
    MAX_NAME_BYTES,
    VARIABLES,
    FilenameTemplate,
    safe_component,
    unique_name,
)

# Hypothesis examples get no time limit: a loaded CI machine must not fail a correct one.
NO_DEADLINE = settings(deadline=None)

CALL_START = datetime(2018, 11, 22, 17, 8, 45, 123456, tzinfo=UTC)
DEFAULT = FilenameTemplate.parse(DEFAULT_TEMPLATE)


def render(template: FilenameTemplate = DEFAULT, **values: object) -> str:
    arguments: dict[str, object] = {
        "when": CALL_START,
        "timezone": UTC,
        "phone_number": "123456789",
        "id": "1542902923.24",
        "name": "sales",
    }
    arguments.update(values)
    return template.render(**arguments)  # type: ignore[arg-type]


def test_default_template_gives_the_requirements_example() -> None:
    assert render() == "2018-11-22_17.08.45-123456789-1542902923.24"
    assert DEFAULT.example() == "2018-11-22_17.08.45-123456789-1542902923.24"


def test_time_is_shown_in_the_configured_zone() -> None:
    assert render(timezone=ZoneInfo("Europe/Warsaw")) == (
        "2018-11-22_18.08.45-123456789-1542902923.24"
    )
    # New Year in Warsaw is still the old year in UTC: every field follows the zone.
    new_year = datetime(2018, 12, 31, 23, 30, 5, tzinfo=UTC)
    template = FilenameTemplate.parse("{YEAR}{MONTH}{DAY}-{HOUR}{MINUTE}{SECOND}")
    assert render(template, when=new_year, timezone=ZoneInfo("Europe/Warsaw")) == "20190101-003005"


def test_every_variable() -> None:
    template = FilenameTemplate.parse("{NAME} {PHONE_NUMBER} {ID} {YEAR}.{MONTH}.{DAY}")
    assert template.variables == ("NAME", "PHONE_NUMBER", "ID", "YEAR", "MONTH", "DAY")
    assert render(template) == "sales 123456789 1542902923.24 2018.11.22"


def test_missing_values_become_unknown() -> None:
    assert render(phone_number=None, name=None) == "2018-11-22_17.08.45-unknown-1542902923.24"
    assert render(FilenameTemplate.parse("{NAME}"), name="  ") == "unknown"
    assert render(FilenameTemplate.parse("{NAME}"), name="..") == "unknown"


def test_template_text_round_trips() -> None:
    assert str(DEFAULT) == DEFAULT_TEMPLATE
    assert str(FilenameTemplate.parse("rec {ID}")) == "rec {ID}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file name template is empty"),
        ("   ", "the file name template is empty"),
        (
            "{YEAR}-{FOO}",
            "unknown variable {FOO} (allowed: {YEAR}, {MONTH}, {DAY}, {HOUR}, {MINUTE}, "
            "{SECOND}, {PHONE_NUMBER}, {ID}, {NAME})",
        ),
        ("{year}-{Id}", "unknown variables {year}, {Id} (allowed: {YEAR},"),
        ("{}", "unknown variable {} (allowed:"),
        ("{ID", "'{' at position 1 is not closed"),
        ("{ID}-{NAME", "'{' at position 6 is not closed"),
        ("{{ID}}", "'{' at position 1 is not closed"),
        ("ID}", "'}' at position 3 has no matching '{'"),
        ("{ID}/{NAME}", "the file name template contains '/' (a file name cannot contain any"),
        ("..\\{ID}", "the file name template contains '\\\\'"),
        ("{HOUR}:{MINUTE}", "contains ':'"),
        ("{ID}\n", "the file name template contains control characters"),
        ("{ID}\u202e", "the file name template contains control characters"),
    ],
)
def test_bad_templates_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        FilenameTemplate.parse(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc/passwd", "_._etc_passwd"),
        ("..\\..\\windows", "_._windows"),
        (".hidden", "hidden"),
        ("a..b...c", "a.b.c"),
        ("  Obsługa \t klienta\n ", "Obsługa klienta"),
        ("+48 22 123\x00\x07", "+48 22 123"),
        ("evil\u202egpj.exe", "evilgpj.exe"),  # a right-to-left override is dropped
        ("C:con?*", "C_con__"),
        ("trailing. ", "trailing"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_values_are_sanitised(value: str | None, expected: str) -> None:
    assert safe_component(value) == expected


def test_long_values_are_cut_on_a_character_boundary() -> None:
    name = safe_component("a" + "😀" * 100)
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name == "a" + "😀" * 44  # 177 bytes: a 45th emoji would make 181
    assert render(FilenameTemplate.parse("{NAME}-{ID}"), name="x" * 500).startswith("x" * 100)
    assert len(render(FilenameTemplate.parse("{NAME}-{ID}"), name="x" * 500)) == MAX_NAME_BYTES


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render(when=datetime(2018, 11, 22, 17, 8, 45))


def test_unique_name_adds_a_suffix_before_the_extension() -> None:
    taken = {"call.ogg", "call-1.ogg", "call-2.ogg"}
    assert unique_name("call", "ogg", taken.__contains__) == "call-3.ogg"
    assert unique_name("call", ".ogg", taken.__contains__) == "call-3.ogg"
    assert unique_name("call", "mp3", taken.__contains__) == "call.mp3"
    assert unique_name("other", "ogg", taken.__contains__) == "other.ogg"


def test_unique_name_gives_up_rather_than_loop_forever() -> None:
    with pytest.raises(FileExistsError):
        unique_name("call", "ogg", lambda _name: True)


def assert_safe_component(name: str, limit: int = MAX_NAME_BYTES) -> None:
    assert name
    assert name not in (".", "..")
    assert ".." not in name
    assert not name.startswith((".", " "))
    assert not name.endswith((".", " "))
    assert not any(c in name for c in '/\\:*?"<>|')
    assert not any(unicodedata.category(c).startswith("C") for c in name)
    assert len(name.encode("utf-8")) <= limit
    assert PurePosixPath(name).name == name
    assert PureWindowsPath(name).name == name


variables = st.sampled_from(VARIABLES).map(lambda v: f"{{{v}}}")
literals = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn"), blacklist_characters='{}/\\:*?"<>|'
    ),
    min_size=1,
    max_size=10,
)
templates = (
    st.lists(st.one_of(variables, literals), min_size=1, max_size=8).map("".join).filter(str.strip)
)


@NO_DEADLINE
@given(
    templates,
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from([UTC, ZoneInfo("Europe/Warsaw"), ZoneInfo("Pacific/Chatham")]),
    st.none() | st.text(),
    st.text(),
    st.none() | st.text(),
)
def test_any_values_render_to_one_safe_path_component(
    text: str,
    when: datetime,
    zone: ZoneInfo,
    phone_number: str | None,
    identifier: str,
    name: str | None,
) -> None:
    template = FilenameTemplate.parse(text)
    assert str(template) == text
    rendered = template.render(
        when=when, timezone=zone, phone_number=phone_number, id=identifier, name=name
    )
    assert_safe_component(rendered)
    with_suffix = unique_name(rendered, "ogg", {f"{rendered}.ogg"}.__contains__)
    assert with_suffix == f"{rendered}-1.ogg"
    assert_safe_component(with_suffix, MAX_NAME_BYTES + len("-1.ogg"))


@NO_DEADLINE
@given(st.text(max_size=40))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        template = FilenameTemplate.parse(text)
    except ValueError:
        return
    assert str(template) == text
    assert set(template.variables) <= set(VARIABLES)
