"""Mixer windows (REQUIREMENTS X6): parsing, membership and the next start, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.recording.windows import DAY_NAMES, MixerWindow, MixerWindows

# Hypothesis examples get no time limit: a loaded CI machine must not fail a correct one.
NO_DEADLINE = settings(deadline=None)

WARSAW = ZoneInfo("Europe/Warsaw")
# 2026: CET -> CEST on Sunday 29 March at 01:00 UTC (02:00 -> 03:00 local),
# CEST -> CET on Sunday 25 October at 01:00 UTC (03:00 -> 02:00 local).
SPRING_FORWARD = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
FALL_BACK = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("always", "always"),
        (" ALWAYS ", "always"),
        ("Mon-Fri 20:00-06:00;sat, sun 00:00-24:00", "mon-fri 20:00-06:00; sat,sun 00:00-24:00"),
        ("daily 8:00 - 9:30", "daily 08:00-09:30"),
        ("mon,tue,wed,thu,fri,sat,sun 01:00-02:00", "daily 01:00-02:00"),
        ("fri-mon 22:00-23:00", "fri-mon 22:00-23:00"),
        ("sun,mon,tue 10:00-11:00", "sun-tue 10:00-11:00"),
        ("mon,wed,fri 10:00-11:00", "mon,wed,fri 10:00-11:00"),
        ("sat,sun,mon-wed 10:00-11:00", "sat-wed 10:00-11:00"),
        ("mon 10:00-11:00;", "mon 10:00-11:00"),
    ],
)
def test_parse_normalises(text: str, normalised: str) -> None:
    windows = MixerWindows.parse(text)
    assert str(windows) == normalised
    assert MixerWindows.parse(normalised) == windows


def test_parse_gives_days_and_minutes() -> None:
    (window,) = MixerWindows.parse("mon-fri 20:00-06:00").windows
    assert window == MixerWindow((0, 1, 2, 3, 4), 20 * 60, 6 * 60)
    assert window.crosses_midnight
    assert MixerWindows.parse("always").always


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no windows given: use always, or windows like mon-fri 20:00-06:00"),
        (" ; ", "no windows given: use always, or windows like mon-fri 20:00-06:00"),
        ("mon-fri", "window 'mon-fri': expected DAYS HH:MM-HH:MM (e.g. mon-fri 20:00-06:00)"),
        ("20:00-06:00", "window '20:00-06:00': expected DAYS HH:MM-HH:MM"),
        (
            "mo-fr 10:00-12:00",
            "window 'mo-fr 10:00-12:00': unknown days 'mo-fr' "
            "(use mon..sun, ranges like mon-fri, lists like sat,sun, or daily)",
        ),
        ("monday 10:00-12:00", "unknown days 'monday'"),
        ("mon,,tue 10:00-12:00", "unknown days ''"),
        ("mon 10:60-12:00", "window 'mon 10:60-12:00': bad time '10:60' (expected 00:00 to 24:00)"),
        ("mon 10:00-24:01", "bad time '24:01'"),
        ("mon 25:00-26:00", "bad time '25:00'"),
        ("mon 24:00-06:00", "window 'mon 24:00-06:00': a window cannot start at 24:00"),
        (
            "mon 10:00-10:00",
            "window 'mon 10:00-10:00': start and end are the same (00:00-24:00 is a whole day)",
        ),
        ("mon 10:00-12:00; tue", "window 'tue': expected DAYS HH:MM-HH:MM"),
        ("mon 1\uff10:00-12:00", "expected DAYS HH:MM-HH:MM"),  # a full-width digit
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        MixerWindows.parse(text)
    assert message in str(info.value)


def test_overnight_window_belongs_to_its_start_day() -> None:
    friday_night = MixerWindows.parse("fri 20:00-06:00")
    assert not friday_night.contains(utc(2026, 6, 5, 19, 59, 59), UTC)  # Friday
    assert friday_night.contains(utc(2026, 6, 5, 20, 0), UTC)
    assert friday_night.contains(utc(2026, 6, 6, 5, 59, 59), UTC)  # Saturday morning
    assert not friday_night.contains(utc(2026, 6, 6, 6, 0), UTC)
    assert not friday_night.contains(utc(2026, 6, 6, 21, 0), UTC)  # Saturday night
    assert not friday_night.contains(utc(2026, 6, 5, 3, 0), UTC)  # Thursday's night


def test_whole_day_ends_at_midnight() -> None:
    monday = MixerWindows.parse("mon 00:00-24:00")
    assert monday.contains(utc(2026, 6, 1, 0, 0), UTC)
    assert monday.contains(utc(2026, 6, 1, 23, 59, 59), UTC)
    assert not monday.contains(utc(2026, 6, 2, 0, 0), UTC)
    assert not monday.contains(utc(2026, 5, 31, 23, 59, 59), UTC)


def test_always_contains_everything_and_starts_now() -> None:
    always = MixerWindows.parse("always")
    moment = datetime(2026, 6, 1, 3, 4, 5, tzinfo=WARSAW)
    assert always.contains(moment, WARSAW)
    assert always.next_start(moment, WARSAW) == moment
    assert always.next_start(moment, WARSAW).tzinfo is UTC


def test_next_start() -> None:
    nights = MixerWindows.parse("mon-fri 20:00-06:00; sat,sun 00:00-24:00")
    wednesday_noon = utc(2026, 6, 3, 12, 0)
    assert nights.next_start(wednesday_noon, UTC) == utc(2026, 6, 3, 20, 0)
    inside = utc(2026, 6, 3, 23, 15)
    assert nights.next_start(inside, UTC) == inside
    evenings = MixerWindows.parse("mon-fri 20:00-22:00")
    assert evenings.next_start(utc(2026, 6, 5, 22, 0), UTC) == utc(2026, 6, 8, 20, 0)  # Fri->Mon


def test_windows_are_in_their_time_zone() -> None:
    nights = MixerWindows.parse("daily 20:00-06:00")
    # Warsaw is UTC+1 in January: 20:00 local is 19:00 UTC.
    assert nights.contains(utc(2026, 1, 14, 19, 0), WARSAW)
    assert not nights.contains(utc(2026, 1, 14, 18, 59), WARSAW)
    assert nights.next_start(utc(2026, 1, 14, 12, 0), WARSAW) == utc(2026, 1, 14, 19, 0)
    # and UTC+2 in July.
    assert nights.next_start(utc(2026, 7, 14, 12, 0), WARSAW) == utc(2026, 7, 14, 18, 0)
    # An aware datetime in any zone means the same instant.
    assert nights.contains(datetime(2026, 1, 14, 20, 30, tzinfo=WARSAW), WARSAW)


def test_spring_forward_start_in_the_gap_opens_when_the_clock_jumps() -> None:
    window = MixerWindows.parse("sun 02:30-04:00")
    assert window.next_start(utc(2026, 3, 28, 12, 0), WARSAW) == SPRING_FORWARD
    assert not window.contains(SPRING_FORWARD - timedelta(seconds=1), WARSAW)
    assert window.contains(SPRING_FORWARD, WARSAW)
    assert window.contains(utc(2026, 3, 29, 1, 59), WARSAW)  # 03:59 CEST
    assert not window.contains(utc(2026, 3, 29, 2, 0), WARSAW)  # 04:00 CEST


def test_spring_forward_window_wholly_in_the_gap_is_skipped() -> None:
    window = MixerWindows.parse("sun 02:10-02:50")
    # Not on 29 March (02:10 never happens); the next Sunday at 02:10 CEST.
    assert window.next_start(utc(2026, 3, 28, 12, 0), WARSAW) == utc(2026, 4, 5, 0, 10)
    for minute in range(0, 240, 5):
        assert not window.contains(utc(2026, 3, 28, 23, 0) + timedelta(minutes=minute), WARSAW)


def test_spring_forward_night_is_an_hour_shorter() -> None:
    nights = MixerWindows.parse("sat 20:00-06:00")
    start = nights.next_start(utc(2026, 3, 28, 12, 0), WARSAW)
    assert start == utc(2026, 3, 28, 19, 0)  # 20:00 CET
    assert nights.contains(utc(2026, 3, 29, 3, 59), WARSAW)  # 05:59 CEST
    assert not nights.contains(utc(2026, 3, 29, 4, 0), WARSAW)  # 06:00 CEST: 9 hours later


def test_fall_back_repeated_hour_is_inside_a_window_over_it() -> None:
    window = MixerWindows.parse("sun 02:00-03:00")
    start = window.next_start(utc(2026, 10, 24, 12, 0), WARSAW)
    assert start == utc(2026, 10, 25, 0, 0)  # the first 02:00 (CEST)
    assert window.contains(utc(2026, 10, 25, 0, 30), WARSAW)  # 02:30 CEST
    assert window.contains(FALL_BACK, WARSAW)  # 02:00 CET, the second time
    assert window.contains(utc(2026, 10, 25, 1, 59), WARSAW)  # 02:59 CET
    assert not window.contains(utc(2026, 10, 25, 2, 0), WARSAW)  # 03:00 CET


def test_fall_back_window_ends_the_first_time_its_end_is_shown() -> None:
    window = MixerWindows.parse("sun 00:00-02:30")
    assert window.contains(utc(2026, 10, 25, 0, 29), WARSAW)  # 02:29 CEST
    assert not window.contains(utc(2026, 10, 25, 0, 30), WARSAW)  # 02:30 CEST
    assert not window.contains(utc(2026, 10, 25, 1, 15), WARSAW)  # 02:15 CET, again
    assert window.next_start(utc(2026, 10, 25, 1, 15), WARSAW) == utc(2026, 10, 31, 23, 0)


def test_fall_back_night_is_an_hour_longer() -> None:
    nights = MixerWindows.parse("sat 20:00-06:00")
    assert nights.next_start(utc(2026, 10, 24, 12, 0), WARSAW) == utc(2026, 10, 24, 18, 0)
    assert nights.contains(utc(2026, 10, 25, 4, 59), WARSAW)  # 05:59 CET
    assert not nights.contains(utc(2026, 10, 25, 5, 0), WARSAW)  # 06:00 CET: 11 hours later


def test_naive_datetimes_are_refused() -> None:
    windows = MixerWindows.parse("daily 01:00-02:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        windows.contains(datetime(2026, 1, 1, 1, 30), UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        windows.next_start(datetime(2026, 1, 1, 1, 30), UTC)


ZONES = [
    UTC,
    WARSAW,
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("America/Santiago"),  # DST changes at midnight
]


@st.composite
def window_texts(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7))
        start = draw(st.integers(0, 24 * 60 - 1))
        end = draw(st.integers(1, 24 * 60).filter(lambda m, s=start: m != s))
        parts.append(
            f"{','.join(days)} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
        )
    return "; ".join(parts)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))


@NO_DEADLINE
@given(window_texts(), instants, st.sampled_from(ZONES))
def test_next_start_is_the_first_instant_inside_a_window(
    text: str, when: datetime, tz: ZoneInfo
) -> None:
    windows = MixerWindows.parse(text)
    start = windows.next_start(when, tz)
    assert start >= when
    assert windows.contains(start, tz)
    if start > when:
        assert not windows.contains(start - timedelta(seconds=1), tz)


@NO_DEADLINE
@given(window_texts())
def test_text_round_trips(text: str) -> None:
    windows = MixerWindows.parse(text)
    assert MixerWindows.parse(str(windows)) == windows


@NO_DEADLINE
@given(st.text(max_size=60))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        windows = MixerWindows.parse(text)
    except ValueError:
        return
    assert MixerWindows.parse(str(windows)) == windows


@NO_DEADLINE
@given(st.from_regex(r"[a-z, -]{0,20} [0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}", fullmatch=True))
def test_near_miss_windows_raise_only_value_error(text: str) -> None:
    try:
        windows = MixerWindows.parse(text)
    except ValueError:
        return
    assert MixerWindows.parse(str(windows)) == windows
