"""Schedule slots in a time zone, across both daylight-saving changes (Europe/Paris, 2027)."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.workflows import cron


def test_a_daily_slot_follows_the_wall_clock_of_its_time_zone() -> None:
    winter = cron.next_slots("0 9 * * *", "Europe/Paris", datetime(2027, 1, 10, 12), 1)
    summer = cron.next_slots("0 9 * * *", "Europe/Paris", datetime(2027, 7, 10, 12), 1)
    assert winter == [datetime(2027, 1, 11, 8)] and summer == [datetime(2027, 7, 11, 7)]


def test_the_repeated_hour_when_daylight_saving_ends_fires_once() -> None:
    slots = cron.next_slots("30 2 * * *", "Europe/Paris", datetime(2027, 10, 30, 12), 2)
    assert slots == [datetime(2027, 10, 31, 0, 30), datetime(2027, 11, 1, 1, 30)]  # 2:30 CEST, then CET
    after_first = cron.next_slots("30 2 * * *", "Europe/Paris", slots[0], 1)
    assert after_first == [datetime(2027, 11, 1, 1, 30)]
    half_hours = cron.next_slots("*/30 * * * *", "Europe/Paris", datetime(2027, 10, 30, 23, 40), 4)
    assert half_hours == [datetime(2027, 10, 31, 0, 0), datetime(2027, 10, 31, 0, 30),  # 2:00, 2:30 CEST
                          datetime(2027, 10, 31, 2, 0), datetime(2027, 10, 31, 2, 30)]  # 3:00, 3:30 CET


def test_the_skipped_hour_when_daylight_saving_starts_moves_the_slot_on() -> None:
    assert cron.next_slots("30 2 * * *", "Europe/Paris", datetime(2027, 3, 27, 12), 2) == [
        datetime(2027, 3, 28, 1, 0), datetime(2027, 3, 29, 0, 30)]  # 3:00 CEST that night


def test_the_latest_slot_is_at_or_before_the_moment() -> None:
    slot = datetime(2027, 1, 1, 10, 20)
    assert cron.latest_slot("*/10 * * * *", "UTC", slot) == slot
    assert cron.latest_slot("*/10 * * * *", "UTC", datetime(2027, 1, 1, 10, 29, 59)) == slot


@pytest.mark.parametrize("expression", ["@daily", "0 9 * * 1-5", "0 0 29 2 *"])
def test_accepted_expressions(expression: str) -> None:
    cron.check(expression, "America/New_York")
