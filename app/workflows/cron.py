"""Cron expressions and time zones of schedules: checking them, and the slots (the instants a schedule
fires at) before or after a moment. Slots are naive UTC like every stored time; the expression is read
in the schedule's time zone, so `0 9 * * *` in Europe/Paris is 9:00 Paris time on both sides of a
daylight-saving change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class ScheduleInvalid(ValueError):
    """A schedule that cannot be stored as asked (HTTP 400); the message names the field."""


def check(cron_expression: str, timezone: str) -> None:
    """ScheduleInvalid naming cron_expression or timezone."""
    expression = cron_expression.strip()
    fields = expression.split()
    if len(fields) != 5 and expression.lower() not in MACROS:
        raise ScheduleInvalid(
            f"cron_expression: {cron_expression!r} has {len(fields)} fields: give 5 fields (minute hour "
            f"day-of-month month day-of-week, e.g. '0 9 * * 1-5') or one of {', '.join(MACROS)}")
    if not croniter.is_valid(expression):
        raise ScheduleInvalid(
            f"cron_expression: {cron_expression!r} is not valid: each field is *, a value, a range, a list "
            "or a step within minute 0-59, hour 0-23, day-of-month 1-31, month 1-12, day-of-week 0-7")
    zone(timezone)
    try:
        next_slots(expression, timezone, datetime.now(UTC).replace(tzinfo=None), 1)
    except CroniterBadDateError:
        raise ScheduleInvalid(f"cron_expression: {cron_expression!r} never comes "
                              "(e.g. February 30th)") from None


def zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleInvalid(f"timezone: {timezone!r} is not an IANA time zone name "
                              "(e.g. 'UTC', 'Europe/Paris', 'America/New_York')") from None


def _iterator(cron_expression: str, timezone: str, at: datetime) -> croniter:
    local = at.replace(tzinfo=UTC).astimezone(zone(timezone))
    try:
        return croniter(cron_expression.strip(), local)
    except CroniterError as exc:  # stored expressions were checked: only a changed library gets here
        raise ScheduleInvalid(f"cron_expression: {exc}") from None


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def next_slots(cron_expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The first `count` slots strictly after `after` (naive UTC). Each wall-clock time fires once: when
    daylight saving ends and an hour repeats, its slots fire the first time only (a job at 2:30 runs once
    that night, not twice); in the hour skipped when it starts, a slot moves to the hour after."""
    slots = _iterator(cron_expression, timezone, after)
    shown = after.replace(tzinfo=UTC).astimezone(zone(timezone)).replace(tzinfo=None)  # the wall clock
    found: list[datetime] = []
    while len(found) < count:
        moment = slots.get_next(datetime)
        wall = moment.replace(tzinfo=None)
        if wall > shown:
            found.append(_naive_utc(moment))
            shown = wall
    return found


def latest_slot(cron_expression: str, timezone: str, at: datetime) -> datetime:
    """The latest slot at or before `at` (naive UTC). Slots are whole minutes."""
    slots = _iterator(cron_expression, timezone, at + timedelta(seconds=1))
    return _naive_utc(slots.get_prev(datetime))
