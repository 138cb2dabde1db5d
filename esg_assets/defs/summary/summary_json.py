"""The summary report as JSON, for machines: the same figures as Markdown and HTML, nothing rounded away."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal

from esg_assets.defs.summary.daily_summary import HISTOGRAM_LABELS
from esg_assets.defs.summary.summary_report import SummaryReport


def to_json(report: SummaryReport) -> str:
    s, changes, performance = report.summary, report.changes, report.performance
    document = {
        "partition_date": s.partition_date,
        "generated_at": report.generated_at,
        "total_accounts": s.total_accounts,
        "counts": s.counts,
        "success_rate": s.success_rate,
        "failure_rate": s.failure_rate,
        "average_scores": s.average_scores,
        "primary_focus": s.primary_focus,
        "score_histograms": {"bins": list(HISTOGRAM_LABELS), **s.score_histograms},
        "failed_accounts_total": s.failed_total,
        "failed_accounts": [asdict(failed) for failed in s.failed_accounts],
        "changes": {
            **asdict(changes),
            "movers": [{**asdict(mover), "change": mover.change} for mover in changes.movers],
        },
        "performance": None
        if performance is None
        else {
            **asdict(performance.fetch),
            "this_run": performance.this_run,
            "fetch_seconds": performance.fetch_seconds,
            "run_seconds": performance.run_seconds,
        },
        # The run worker's resource use up to the summary (core/run_metadata.py ResourceFigures).
        "resources": None if report.resources is None else asdict(report.resources),
        "checks": [check.to_document() for check in report.checks],
        "trends": {
            "windows": {f"{window.days}d": asdict(window) for window in report.trends.windows},
            "days": [
                {**asdict(point), "success_rate": point.success_rate, "failure_rate": point.failure_rate}
                for point in report.trends.points
            ],
        },
    }
    return json.dumps(document, default=_json_value, indent=2, ensure_ascii=False)


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)  # exact, as in the file: a float would turn 71.25 into 71.25000000000001 somewhere
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
