"""Working-day deadlines and the 三单一函 ladder, as pure functions of a calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.exchange.deadlines import (
    BEIJING,
    LEVELS,
    WorkCalendar,
    compute_deadline,
    due_levels,
    next_level_at,
)

# The demo network's holidays around the 2026 Mid-Autumn Festival and National Day.
HOLIDAYS = WorkCalendar.of(
    [date(2026, 9, 25), date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5),
     date(2026, 10, 6), date(2026, 10, 7)]
)  # fmt: skip


def cst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def test_deadline_spans_a_weekend_and_a_holiday() -> None:
    # Thursday 24 September; Friday 25 is a holiday, then the weekend: the three working
    # days are Monday 28 to Wednesday 30, so the limit ends at midnight into 1 October.
    deadline = compute_deadline(cst("2026-09-24T10:00:00"), 3, HOLIDAYS)
    assert deadline.starts_on == date(2026, 9, 28)
    assert deadline.due_at == cst("2026-10-01T00:00:00")
    assert dict(deadline.levels) == {
        "reminder": cst("2026-09-29T12:00:00"),  # 1.5 of 3 working days
        "urge": cst("2026-09-30T09:36:00"),  # 2.4 of 3
        "supervise": cst("2026-10-01T00:00:00"),
        # one more working day: 1-7 October are holidays or the weekend, so the 8th
        "transfer": cst("2026-10-09T00:00:00"),
    }


def test_the_day_of_submission_does_not_count() -> None:
    monday = compute_deadline(cst("2026-06-01T23:59:00"), 1, WorkCalendar())
    assert monday.starts_on == date(2026, 6, 2)
    assert monday.due_at == cst("2026-06-03T00:00:00")


def test_a_friday_evening_submission_keeps_its_weekend() -> None:
    deadline = compute_deadline(cst("2026-06-05T18:00:00"), 2, WorkCalendar())
    assert deadline.starts_on == date(2026, 6, 8)
    assert deadline.level_at("reminder") == cst("2026-06-09T00:00:00")
    assert deadline.due_at == cst("2026-06-10T00:00:00")


def test_utc_times_are_counted_on_beijing_days() -> None:
    # 17:00 UTC on Thursday is 01:00 on Friday in Beijing: Friday is the day of submission.
    deadline = compute_deadline(
        datetime.fromisoformat("2026-06-04T17:00:00+00:00"), 1, WorkCalendar()
    )
    assert deadline.starts_on == date(2026, 6, 8)


def test_ladder_fires_each_level_once_and_in_order() -> None:
    deadline = compute_deadline(cst("2026-09-24T10:00:00"), 3, HOLIDAYS)
    fired: list[str] = []
    moments = [cst("2026-09-29T11:59:59"), cst("2026-09-29T12:00:00"), cst("2026-09-30T12:00:00"),
               cst("2026-10-01T00:00:00"), cst("2026-10-08T23:59:59"), cst("2026-10-09T00:00:00"),
               cst("2026-12-31T00:00:00")]  # fmt: skip
    seen: list[list[str]] = []
    for moment in moments:
        due = [name for name, _ in due_levels(deadline, moment, fired)]
        seen.append(due)
        fired.extend(due)
    assert seen == [[], ["reminder"], ["urge"], ["supervise"], [], ["transfer"], []]
    assert fired == list(LEVELS)
    assert next_level_at(deadline, fired) is None


def test_a_node_back_after_a_long_outage_fires_every_missed_level_in_order() -> None:
    deadline = compute_deadline(cst("2026-09-24T10:00:00"), 3, HOLIDAYS)
    due = due_levels(deadline, cst("2026-11-01T00:00:00"), [])
    assert [name for name, _ in due] == ["reminder", "urge", "supervise", "transfer"]


def test_next_level_skips_fired_ones() -> None:
    deadline = compute_deadline(cst("2026-09-24T10:00:00"), 3, HOLIDAYS)
    assert next_level_at(deadline, []) == cst("2026-09-29T12:00:00")
    assert next_level_at(deadline, ["reminder", "urge"]) == cst("2026-10-01T00:00:00")


@pytest.mark.parametrize("bad", [0, -1])
def test_a_limit_is_at_least_one_working_day(bad: int) -> None:
    with pytest.raises(ValueError, match="at least one working day"):
        compute_deadline(cst("2026-06-01T10:00:00"), bad, WorkCalendar())


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        compute_deadline(datetime(2026, 6, 1, 10), 1, WorkCalendar())


@settings(deadline=None)  # pure and fast; a loaded CI machine must not make it flaky
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    days=st.integers(min_value=1, max_value=60),
    holidays=st.sets(
        st.dates(min_value=date(2024, 1, 1), max_value=date(2031, 6, 30)), max_size=40
    ),
)
def test_the_limit_holds_exactly_its_working_days(
    start: datetime, days: int, holidays: set[date]
) -> None:
    calendar = WorkCalendar.of(holidays)
    deadline = compute_deadline(start.replace(tzinfo=BEIJING), days, calendar)
    last_day = (deadline.due_at - timedelta(seconds=1)).date()
    counted = [
        deadline.starts_on + timedelta(days=i)
        for i in range((last_day - deadline.starts_on).days + 1)
    ]
    assert sum(calendar.is_working_day(d) for d in counted) == days
    assert calendar.is_working_day(deadline.starts_on)
    assert calendar.is_working_day(last_day)
    instants = [at for _, at in deadline.levels]
    assert instants == sorted(instants)
    assert deadline.level_at("supervise") == deadline.due_at
