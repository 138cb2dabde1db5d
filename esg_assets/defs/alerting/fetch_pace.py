"""The pace of a run's fetch from its progress reports: throughput and 429s over a window, the projected end.

Pure functions of the reports ``esg_ratings`` writes every 10 seconds (``RatingsProgressMetadata``, counters
cumulative since the fetch started), oldest first. The fetch's start counts as a report of nothing done at
0 seconds, so a window may begin there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from esg_assets.core import settings
from esg_assets.core.run_metadata import RatingsProgressMetadata


@dataclass(frozen=True)
class PaceThresholds:
    """When a fetch is projected (``ESG_PROJECTION_WARMUP_SECONDS``) and when it counts as degraded
    (``ESG_DEGRADED_*``)."""

    warmup_seconds: int = int(settings.PROJECTION_WARMUP_SECONDS.default)  # type: ignore[arg-type]
    throughput_share: float = float(settings.DEGRADED_THROUGHPUT_SHARE.default)  # type: ignore[arg-type]
    throughput_seconds: int = int(settings.DEGRADED_THROUGHPUT_SECONDS.default)  # type: ignore[arg-type]
    throttled_share: float = float(settings.DEGRADED_THROTTLED_SHARE.default)  # type: ignore[arg-type]
    throttled_seconds: int = int(settings.DEGRADED_THROTTLED_SECONDS.default)  # type: ignore[arg-type]


DEFAULT_THRESHOLDS = PaceThresholds()


@dataclass(frozen=True)
class Pace:
    """What the fetch did between two reports."""

    seconds: float
    accounts: int
    requests: int
    throttled: int

    @property
    def accounts_per_second(self) -> float:
        return self.accounts / self.seconds if self.seconds > 0 else 0.0

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0


def pace_over(progress: Sequence[RatingsProgressMetadata], seconds: float) -> Pace | None:
    """The pace over the last ``seconds`` (at least) up to the latest report; None while the fetch is younger.

    The window starts at the latest report at least ``seconds`` before the last one, so it covers no less.
    """
    if not progress or progress[-1].elapsed_seconds < seconds:
        return None
    return _between(_start_of_window(progress, seconds), progress[-1])


def current_pace(progress: Sequence[RatingsProgressMetadata], seconds: float) -> Pace:
    """The pace over the last ``seconds``, or since the fetch started when that is more recent."""
    return _between(_start_of_window(progress, seconds), progress[-1])


def projected_end(progress: Sequence[RatingsProgressMetadata], seconds: float) -> datetime | None:
    """When the fetch ends if it keeps the pace of its last ``seconds``; None when that pace is nil."""
    latest = progress[-1]
    per_second = current_pace(progress, seconds).accounts_per_second
    if per_second <= 0:
        return None
    remaining = max(latest.to_fetch - latest.done, 0) / per_second
    return datetime.fromtimestamp(latest.observed_at, timezone.utc) + timedelta(seconds=remaining)


def is_fetching(progress: Sequence[RatingsProgressMetadata]) -> bool:
    """There are reports and the latest does not say the fetch is over."""
    return bool(progress) and progress[-1].done < progress[-1].to_fetch


_ORIGIN = RatingsProgressMetadata()


def _start_of_window(progress: Sequence[RatingsProgressMetadata], seconds: float) -> RatingsProgressMetadata:
    since = progress[-1].elapsed_seconds - seconds
    earlier = [report for report in progress[:-1] if report.elapsed_seconds <= since]
    return earlier[-1] if earlier else _ORIGIN


def _between(first: RatingsProgressMetadata, last: RatingsProgressMetadata) -> Pace:
    return Pace(
        seconds=last.elapsed_seconds - first.elapsed_seconds,
        accounts=last.done - first.done,
        requests=last.requests - first.requests,
        throttled=last.throttled_429 - first.throttled_429,
    )
