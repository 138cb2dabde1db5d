"""Everything the day's summary report says, gathered from the warehouse in one place for every renderer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

import duckdb

from esg_assets.core.check_report import CheckOutcome
from esg_assets.core.run_metadata import ResourceFigures
from esg_assets.core.support_page import SHIPPED_SUPPORT_PAGE
from esg_assets.defs.summary.daily_summary import DailySummary, build_daily_summary
from esg_assets.defs.summary.day_over_day import DayOverDay, build_day_over_day
from esg_assets.defs.summary.run_performance import RunPerformance, build_run_performance
from esg_assets.defs.summary.trends import Trends, build_trends


@dataclass(frozen=True)
class SummaryReport:
    summary: DailySummary
    changes: DayOverDay
    performance: RunPerformance | None  # None: the day's ratings were never fetched
    trends: Trends
    generated_at: datetime
    support_url: str = SHIPPED_SUPPORT_PAGE  # ESG_SUPPORT_URL: the page on raising a question or an incident
    resources: ResourceFigures | None = None  # the run worker's use up to the summary; None: not measured
    checks: Sequence[CheckOutcome] = ()  # the day's check report (defs/day_files: which checks and when)


def build_summary_report(
    connection: duckdb.DuckDBPyConnection,
    day: date,
    run_id: str,
    run_started_at: datetime | None = None,
    support_url: str = SHIPPED_SUPPORT_PAGE,
    resources: ResourceFigures | None = None,
    checks: Sequence[CheckOutcome] = (),
) -> SummaryReport:
    now = datetime.now(timezone.utc)
    performance = build_run_performance(connection, day, run_id, run_started_at, now)
    return SummaryReport(
        summary=build_daily_summary(connection, day),
        changes=build_day_over_day(connection, day),
        performance=performance,
        trends=build_trends(connection, day, current_run=performance),
        generated_at=now,
        support_url=support_url,
        resources=resources,
        checks=tuple(checks),
    )
