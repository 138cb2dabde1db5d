"""The day's summary as its three files (HTML, Markdown, JSON) and as the summary asset's Dagster metadata."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import MetadataValue

from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.defs.summary.charts import Chart, draw_charts
from esg_assets.defs.summary.summary_html import to_html
from esg_assets.defs.summary.summary_json import to_json
from esg_assets.defs.summary.summary_markdown import to_markdown
from esg_assets.defs.summary.summary_report import SummaryReport


@dataclass(frozen=True)
class SummaryFiles:
    """The rendered summary: file contents by extension, the charts (for the email) and the Markdown."""

    contents: dict[str, bytes]  # html, md, json
    charts: list[Chart]
    markdown: str


def render_summary_files(report: SummaryReport) -> SummaryFiles:
    charts = draw_charts(report)
    markdown = to_markdown(report)
    contents = {"html": to_html(report, charts), "md": markdown, "json": to_json(report)}
    return SummaryFiles({ext: text.encode("utf-8") for ext, text in contents.items()}, charts, markdown)


def summary_metadata(report: SummaryReport, markdown: str) -> dict:
    """What the summary asset shows in the UI: the Markdown, figures, change and the run's performance."""
    summary = report.summary
    return {
        "summary": MetadataValue.md(markdown),
        "total_accounts": summary.total_accounts,
        "success_rate": round(summary.success_rate, 6),
        "failure_rate": round(summary.failure_rate, 6),
        **{status.value.lower(): summary.counts[status.value] for status in ProcessingStatus},
        **{
            f"average_{pillar.lower()}": float(value)
            for pillar, value in summary.average_scores.items()
            if value is not None
        },
        **_change_metadata(report),
        **_performance_metadata(report),
        **report.trends.metadata(),
    }


def _change_metadata(report: SummaryReport) -> dict:
    changes = report.changes
    if changes.previous_date is None:
        return {}
    return {
        "compared_with": MetadataValue.text(changes.previous_date.isoformat()),
        "new_accounts": changes.new_accounts,
        "closed_accounts": changes.closed_accounts,
    }


def _performance_metadata(report: SummaryReport) -> dict:
    performance = report.performance
    if performance is None:
        return {}
    fetch = performance.fetch
    return {
        "fetch_seconds": round(performance.fetch_seconds, 2),
        "requests_per_second": round(fetch.requests_per_second, 2),
        "retries": fetch.retries,
        "throttled_429": fetch.throttled,
        "not_modified_304": fetch.not_modified,
    }
