"""The job's day on the Central clock: today's partition, its 05:00 start, start grace and deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from esg_assets.core import settings
from esg_assets.core.partitions import JOB_TIMEZONE

CENTRAL = ZoneInfo(JOB_TIMEZONE)
SCHEDULED_START = time(5, 0)  # the schedule's tick (esg_assets/defs/daily_ratings/schedule.py)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def central_day(now: datetime) -> date:
    """The Central day ``now`` (timezone-aware) falls on: the partition the schedule runs that day."""
    return now.astimezone(CENTRAL).date()


def at_central(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` Central on ``day``, timezone-aware; DST days too (05:00 and 09:00 always exist)."""
    return datetime.combine(day, time(hour, minute), tzinfo=CENTRAL)


@dataclass(frozen=True)
class JobWindow:
    """How late the run may start (``ESG_START_GRACE_MINUTES``), when it must end (``ESG_DEADLINE_HOUR``)."""

    start_grace_minutes: int = int(settings.START_GRACE_MINUTES.default)  # type: ignore[arg-type]
    deadline_hour: int = int(settings.DEADLINE_HOUR.default)  # type: ignore[arg-type]

    @property
    def start_grace(self) -> timedelta:
        return timedelta(minutes=self.start_grace_minutes)


DEFAULT_WINDOW = JobWindow()


def late_start_after(day: date, window: JobWindow = DEFAULT_WINDOW) -> datetime:
    """When the day's run counts as not started: 05:00 Central plus ESG_START_GRACE_MINUTES."""
    return at_central(day, SCHEDULED_START.hour, SCHEDULED_START.minute) + window.start_grace


def deadline_of(day: date, window: JobWindow = DEFAULT_WINDOW) -> datetime:
    """When the day's file is due and a run still going is terminated (ESG_DEADLINE_HOUR Central)."""
    return at_central(day, window.deadline_hour)


def recent_days(now: datetime, days: int) -> list[date]:
    """Today (Central) and the ``days - 1`` days before it, newest first."""
    today = central_day(now)
    return [today - timedelta(days=offset) for offset in range(days)]
