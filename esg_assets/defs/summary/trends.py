"""The job over weeks: per-day duration, success/failure rates, throughput and average scores, 30/90 days."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import fmean

import duckdb

from esg_assets.defs.summary.run_performance import RunPerformance

WINDOWS = (30, 90)

# Metrics averaged over a window, in the order reports list them: (name, label).
TREND_METRICS = (
    ("success_rate", "Success rate"),
    ("failure_rate", "Failure rate"),
    ("duration_seconds", "Run duration"),
    ("throughput_per_second", "Throughput (requests/s)"),
    ("average_overall", "Average Overall"),
    ("average_environmental", "Average Environmental"),
    ("average_social", "Average Social"),
    ("average_governance", "Average Governance"),
)


@dataclass(frozen=True)
class DayPoint:
    """One day: rates and scores from its final ratings, run figures from its main run in ``run_history``."""

    day: date
    accounts: int
    successful: int
    partial: int
    failed: int
    average_overall: float | None
    average_environmental: float | None
    average_social: float | None
    average_governance: float | None
    runs: int  # materializations recorded in run_history
    duration_seconds: float | None
    throughput_per_second: float | None
    api_requests: int | None
    retries: int | None
    throttled: int | None
    not_modified: int | None

    @property
    def success_rate(self) -> float | None:
        return self.successful / self.accounts if self.accounts else None

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.accounts if self.accounts else None


@dataclass(frozen=True)
class TrendWindow:
    days: int
    days_with_data: int
    means: dict[str, float | None]  # TREND_METRICS name -> mean over the days that have a value


@dataclass(frozen=True)
class Trends:
    end_day: date
    points: list[DayPoint]  # the longest window's days that have data, oldest first
    windows: list[TrendWindow]

    def metadata(self) -> dict[str, float | int]:
        """``trend_30d_success_rate`` and the like: numbers Dagster plots across materializations."""
        entries: dict[str, float | int] = {}
        for window in self.windows:
            entries[f"trend_{window.days}d_days_with_data"] = window.days_with_data
            for name, mean in window.means.items():
                if mean is not None:
                    entries[f"trend_{window.days}d_{name}"] = round(mean, 6)
        return entries


def build_trends(
    connection: duckdb.DuckDBPyConnection,
    end_day: date,
    current_run: RunPerformance | None = None,
    windows: tuple[int, ...] = WINDOWS,
) -> Trends:
    """``current_run`` supplies ``end_day``'s run figures until ``run_history`` records it (the next step)."""
    points = daily_points(connection, end_day, max(windows))
    today = points[-1] if points and points[-1].day == end_day else None
    if today is not None and today.runs == 0 and current_run is not None and current_run.this_run:
        points[-1] = _with_current_run(today, current_run)
    return Trends(end_day, points, [window_of(points, end_day, days) for days in windows])


def _with_current_run(point: DayPoint, run: RunPerformance) -> DayPoint:
    return replace(
        point,
        runs=1,
        duration_seconds=run.run_seconds,
        throughput_per_second=run.fetch.requests_per_second,
        api_requests=run.fetch.api_requests,
        retries=run.fetch.retries,
        throttled=run.fetch.throttled,
        not_modified=run.fetch.not_modified,
    )


def window_of(points: list[DayPoint], end_day: date, days: int) -> TrendWindow:
    first = end_day - timedelta(days=days - 1)
    inside = [point for point in points if first <= point.day <= end_day]
    means = {}
    for name, _ in TREND_METRICS:
        values = [value for point in inside if (value := getattr(point, name)) is not None]
        means[name] = fmean(values) if values else None
    return TrendWindow(days=days, days_with_data=len(inside), means=means)


def daily_points(connection: duckdb.DuckDBPyConnection, end_day: date, days: int) -> list[DayPoint]:
    """The days from ``end_day - days + 1`` to ``end_day`` that have ratings or runs, aggregated in DuckDB.

    A day's run figures come from its main run: the one that asked the API most (a re-run that resumed asks
    for little or nothing), the latest on a tie.
    """
    bounds = {"first": end_day - timedelta(days=days - 1), "last": end_day}
    rows = connection.execute(
        """
        WITH ratings AS (
            SELECT partition_date AS day, count(*) AS accounts,
                   count(*) FILTER (WHERE processing_status = 'Successful') AS successful,
                   count(*) FILTER (WHERE processing_status = 'Partial') AS partial,
                   count(*) FILTER (WHERE processing_status = 'Failed') AS failed,
                   avg(overall) AS overall, avg(environmental) AS environmental, avg(social) AS social,
                   avg(governance) AS governance
            FROM esg_ratings
            WHERE partition_date BETWEEN $first AND $last
            GROUP BY 1
        ),
        runs AS (
            SELECT partition_date AS day, count(*) OVER (PARTITION BY partition_date) AS runs,
                   duration_seconds, throughput_per_second, api_requests, retries, throttled, not_modified
            FROM run_history
            WHERE partition_date BETWEEN $first AND $last
            QUALIFY row_number() OVER (
                PARTITION BY partition_date ORDER BY api_requests DESC, finished_at DESC) = 1
        )
        SELECT day, coalesce(r.accounts, 0), coalesce(r.successful, 0), coalesce(r.partial, 0),
               coalesce(r.failed, 0), r.overall, r.environmental, r.social, r.governance,
               coalesce(h.runs, 0), h.duration_seconds, h.throughput_per_second, h.api_requests, h.retries,
               h.throttled, h.not_modified
        FROM ratings r FULL JOIN runs h USING (day)
        ORDER BY day
        """,
        bounds,
    ).fetchall()
    return [DayPoint(*row) for row in rows]
