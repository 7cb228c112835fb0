"""Time limits in working days and the 三单一函 escalation ladder (SPEC 5).

A service item promises an answer within ``time_limit_days`` working days (承诺时限).
Following the rule of Chinese administrative law that the day an act happens does not
count towards a period (期间开始之日不计算在内), the clock starts at 00:00 Beijing time of
the first working day *after* the day of submission and the request is due at 24:00 of
the last working day. Saturdays, Sundays and the node's configured holidays are not
working days.

Percentages run over *working time*: every working day counts 24 hours, every other
day counts nothing. So with a 5-day limit, 50 % falls at 12:00 of the third working day
and a Friday-evening submission does not lose its weekend.

The ladder, each step at most once per request:

=============  ===================  ============================================
level          Chinese              when
=============  ===================  ============================================
``reminder``   提醒单               50 % of the limit
``urge``       催办单               80 % of the limit
``supervise``  督办单               100 %: the limit is reached
``transfer``   移交函               overdue by one more full working day
=============  ===================  ============================================

Everything here is a pure function of dates, so the ladder can be tested on any
calendar without a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

__all__ = [
    "BEIJING",
    "LEVELS",
    "Deadline",
    "EscalationLevel",
    "WorkCalendar",
    "compute_deadline",
    "due_levels",
]

BEIJING = timezone(timedelta(hours=8), "CST")
"""Working days are counted on Beijing time (UTC+8), whatever the server's zone."""

EscalationLevel = Literal["reminder", "urge", "supervise", "transfer"]
LEVELS: tuple[EscalationLevel, ...] = ("reminder", "urge", "supervise", "transfer")

#: Fraction of the time limit at which each level is due; ``transfer`` is one working
#: day past the limit instead (see the module docstring).
_FRACTIONS: dict[EscalationLevel, float] = {"reminder": 0.5, "urge": 0.8, "supervise": 1.0}
_DAY = timedelta(days=1)
_MAX_SCAN_DAYS = 3660
"""A calendar that never reaches a working day within ten years is a configuration bug."""


@dataclass(frozen=True)
class WorkCalendar:
    """Which days count towards a time limit: weekdays that are not holidays."""

    holidays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, holidays: Iterable[date]) -> WorkCalendar:
        return cls(frozenset(holidays))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_working_day(self, after: date) -> date:
        """The first working day strictly after ``after``."""
        day = after
        for _ in range(_MAX_SCAN_DAYS):
            day += _DAY
            if self.is_working_day(day):
                return day
        raise ValueError("no working day within ten years: check the holidays list")

    def working_instant(self, first_day: date, working_seconds: float) -> datetime:
        """The Beijing-time instant after ``working_seconds`` of working time from the
        start of ``first_day`` (which must be a working day)."""
        day = first_day
        remaining = working_seconds
        for _ in range(_MAX_SCAN_DAYS):
            if remaining <= 86400:
                start = datetime.combine(day, time(0), BEIJING)
                return start + timedelta(seconds=remaining)
            remaining -= 86400
            day = self.next_working_day(day)
        raise ValueError("time limit too long for the calendar")


@dataclass(frozen=True)
class Deadline:
    """A request's time limit and the instant each ladder level falls due (UTC-aware)."""

    time_limit_days: int
    starts_on: date
    due_at: datetime
    levels: tuple[tuple[EscalationLevel, datetime], ...]

    def level_at(self, level: EscalationLevel) -> datetime:
        for name, at in self.levels:
            if name == level:
                return at
        raise KeyError(level)

    def to_json(self) -> dict[str, object]:
        return {
            "time_limit_days": self.time_limit_days,
            "starts_on": self.starts_on.isoformat(),
            "due_at": self.due_at.isoformat(),
            "levels": {name: at.isoformat() for name, at in self.levels},
        }


def compute_deadline(submitted_at: datetime, days: int, calendar: WorkCalendar) -> Deadline:
    """The deadline of a request submitted at ``submitted_at`` (timezone-aware) with a
    limit of ``days`` working days, and when each escalation level falls due."""
    if submitted_at.tzinfo is None:
        raise ValueError("submitted_at must carry a timezone")
    if days < 1:
        raise ValueError("a time limit is at least one working day")
    local_day = submitted_at.astimezone(BEIJING).date()
    first = calendar.next_working_day(local_day)
    total = days * 86400.0
    levels: list[tuple[EscalationLevel, datetime]] = [
        (name, calendar.working_instant(first, total * fraction))
        for name, fraction in _FRACTIONS.items()
    ]
    due_at = levels[-1][1]
    levels.append(("transfer", calendar.working_instant(first, total + 86400)))
    return Deadline(days, first, due_at, tuple(levels))


def due_levels(
    deadline: Deadline, now: datetime, fired: Iterable[str]
) -> list[tuple[EscalationLevel, datetime]]:
    """Levels due at ``now`` that have not fired yet, lowest first.

    A node that was down past several thresholds fires all of them when it returns,
    in order, so the ladder never skips a rung.
    """
    done = set(fired)
    return [(name, at) for name, at in deadline.levels if at <= now and name not in done]


def next_level_at(deadline: Deadline, fired: Iterable[str]) -> datetime | None:
    """When the next unfired level falls due, or ``None`` when the ladder is done."""
    done = set(fired)
    pending = [at for name, at in deadline.levels if name not in done]
    return min(pending) if pending else None
