"""When the mixer may run: ``mixer.windows`` parsed, and asked about instants.

``always`` lets finalize jobs run right after a call ends; otherwise the text is a list
of windows such as ``mon-fri 20:00-06:00; sat,sun 00:00-24:00`` in the wall-clock time
of ``mixer.timezone`` (REQUIREMENTS X6). A window whose end is not after its start
crosses midnight and belongs to its start day (``fri 20:00-06:00`` ends on Saturday).

Each window on a given date is one interval of real time: from the first instant the
zone's clock shows the start time to the first instant it shows the end time. So a
start inside a spring-forward gap opens the window when the clock jumps past it, and a
window over a fall-back night lasts an hour longer by the clock on the wall. Pure: the
caller passes the instant; nothing here reads the clock or the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = ["DAY_NAMES", "MixerWindow", "MixerWindows"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_HELP = "mon..sun, ranges like mon-fri, lists like sat,sun, or daily"
_WINDOW = re.compile(
    r"(?P<days>.+?)\s+(?P<start>[0-9]{1,2}:[0-9]{2})\s*-\s*(?P<end>[0-9]{1,2}:[0-9]{2})",
    re.ASCII,
)
_MINUTES_PER_DAY = 24 * 60
# A window can only be empty on a date when it lies wholly in a DST gap, which happens
# at most a few times a year: a year of dates always finds the next start.
_SEARCH_DAYS = 366 + 7


@dataclass(frozen=True, slots=True)
class MixerWindow:
    """Days of the week (0 = Monday) and minutes after midnight; ``end`` may be 1440."""

    days: tuple[int, ...]
    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_format_days(self.days)} {_format_time(self.start)}-{_format_time(self.end)}"

    def interval(self, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
        """The window on ``day`` as UTC instants; empty when it falls in a DST gap."""
        midnight = datetime(day.year, day.month, day.day)
        end_day = midnight + timedelta(days=1) if self.crosses_midnight else midnight
        return (
            _first_instant(midnight + timedelta(minutes=self.start), tz),
            _first_instant(end_day + timedelta(minutes=self.end), tz),
        )


@dataclass(frozen=True, slots=True)
class MixerWindows:
    """``always`` (``windows`` empty) or the windows in which finalize jobs may start."""

    windows: tuple[MixerWindow, ...] = ()

    @property
    def always(self) -> bool:
        return not self.windows

    @classmethod
    def parse(cls, text: str) -> MixerWindows:
        stripped = text.strip()
        if stripped.lower() == "always":
            return cls()
        windows = tuple(_parse_window(part.strip()) for part in stripped.split(";") if part.strip())
        if not windows:
            raise ValueError("no windows given: use always, or windows like mon-fri 20:00-06:00")
        return cls(windows)

    def __str__(self) -> str:
        return "; ".join(str(w) for w in self.windows) if self.windows else "always"

    def contains(self, when: datetime, tz: tzinfo) -> bool:
        """Whether a job may start at ``when`` (an aware datetime)."""
        instant = _utc(when)
        if self.always:
            return True
        local_day = instant.astimezone(tz).date()
        # Dates around the local one: an overnight window of yesterday, and a repeated
        # hour at a fall-back midnight, can both cover this instant.
        for offset in (-2, -1, 0, 1):
            day = local_day + timedelta(days=offset)
            for window in self.windows:
                if day.weekday() in window.days:
                    start, end = window.interval(day, tz)
                    if start <= instant < end:
                        return True
        return False

    def next_start(self, when: datetime, tz: tzinfo) -> datetime:
        """The first instant at or after ``when`` inside a window, in UTC."""
        instant = _utc(when)
        if self.contains(instant, tz):
            return instant
        first_day = instant.astimezone(tz).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            day = first_day + timedelta(days=offset)
            starts: list[datetime] = []
            for window in self.windows:
                if day.weekday() in window.days:
                    start, end = window.interval(day, tz)
                    if instant <= start < end:
                        starts.append(start)
            # Later dates never start earlier: the first date with a start has the answer.
            if starts:
                return min(starts)
        raise AssertionError(f"no window of {self} opens within a year")  # pragma: no cover


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("when must be a timezone-aware datetime")
    return when.astimezone(UTC)


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _first_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The first instant (UTC) at which the clock in ``tz`` shows ``wall`` or later."""
    earlier = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    later = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(earlier, later), max(earlier, later)
    if _wall(low, tz) >= wall:
        return low  # the time exists (the first of two in a repeated hour)
    # In a spring-forward gap: the clock jumps past ``wall`` somewhere in (low, high].
    # Transitions fall on whole seconds, so bisecting seconds finds the jump exactly.
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if _wall(low + timedelta(seconds=mid), tz) >= wall:
            hi = mid
        else:
            lo = mid + 1
    return low + timedelta(seconds=lo)


def _parse_window(text: str) -> MixerWindow:
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise ValueError(f"window {text!r}: expected DAYS HH:MM-HH:MM (e.g. mon-fri 20:00-06:00)")
    days = _parse_days(match["days"], text)
    start = _parse_time(match["start"], text)
    end = _parse_time(match["end"], text)
    if start == _MINUTES_PER_DAY:
        raise ValueError(f"window {text!r}: a window cannot start at 24:00")
    if start == end:
        raise ValueError(
            f"window {text!r}: start and end are the same (00:00-24:00 is a whole day)"
        )
    return MixerWindow(days, start, end)


def _parse_days(text: str, window: str) -> tuple[int, ...]:
    days: set[int] = set()
    for item in text.lower().replace(" ", "").split(","):
        if item == "daily":
            days.update(range(7))
            continue
        first, sep, last = item.partition("-")
        if first not in DAY_NAMES or (sep and last not in DAY_NAMES):
            raise ValueError(f"window {window!r}: unknown days {item!r} (use {_DAY_HELP})")
        low = DAY_NAMES.index(first)
        high = DAY_NAMES.index(last) if sep else low
        # fri-mon wraps over the weekend.
        days.update(d % 7 for d in range(low, high + 1 if high >= low else high + 8))
    return tuple(sorted(days))


def _parse_time(text: str, window: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > _MINUTES_PER_DAY:
        raise ValueError(f"window {window!r}: bad time {text!r} (expected 00:00 to 24:00)")
    return value


def _format_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _format_days(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "daily"
    chosen = set(days)
    # Start after a day that is not chosen, so a run over Sunday stays one run.
    first = next(d for d in range(7) if (d - 1) % 7 not in chosen and d in chosen)
    runs: list[list[int]] = []
    for d in (first + i for i in range(7)):
        if d % 7 not in chosen:
            continue
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts: list[str] = []
    for run in runs:
        names = [DAY_NAMES[d % 7] for d in run]
        parts.append(f"{names[0]}-{names[-1]}" if len(run) >= 3 else ",".join(names))
    return ",".join(parts)
