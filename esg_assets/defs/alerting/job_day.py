"""The job's day on the Central clock: today's partition, its 05:00 start, its start grace and its deadline."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from esg_assets.core import settings
from esg_assets.core.partitions import JOB_TIMEZONE

CENTRAL = ZoneInfo(JOB_TIMEZONE)
SCHEDULED_START = time(5, 0)  # the schedule's tick (esg_assets/defs/daily_ratings/schedule.py)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def central_day(now: datetime) -> date:
    """The Central calendar day ``now`` (timezone-aware) falls on: the partition the schedule runs that day."""
    return now.astimezone(CENTRAL).date()


def at_central(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` Central on ``day``, timezone-aware; DST days included (05:00 and 09:00 always exist)."""
    return datetime.combine(day, time(hour, minute), tzinfo=CENTRAL)


def start_grace() -> timedelta:
    return timedelta(minutes=_int_setting(settings.START_GRACE_MINUTES, 0, 24 * 60))


def deadline_hour() -> int:
    return _int_setting(settings.DEADLINE_HOUR, 0, 23)


def late_start_after(day: date) -> datetime:
    """When the day's run counts as not started: 05:00 Central plus ESG_START_GRACE_MINUTES."""
    return at_central(day, SCHEDULED_START.hour, SCHEDULED_START.minute) + start_grace()


def deadline_of(day: date) -> datetime:
    """When the day's file is due and a run of the day still going is terminated (ESG_DEADLINE_HOUR Central)."""
    return at_central(day, deadline_hour())


def recent_days(now: datetime, days: int) -> list[date]:
    """Today (Central) and the ``days - 1`` days before it, newest first."""
    today = central_day(now)
    return [today - timedelta(days=offset) for offset in range(days)]


def _int_setting(setting: settings.Setting, low: int, high: int) -> int:
    text = setting.value()
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"Setting {setting.name} must be a whole number from {low} to {high}, got {text!r}")
    return value
