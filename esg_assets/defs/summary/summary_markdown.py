"""The summary report as Markdown: what the Dagster UI shows on the materialization, and the .md file."""

from __future__ import annotations

import html
import re

from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.core.support_page import support_line
from esg_assets.defs.summary import formatting as fmt
from esg_assets.defs.summary.daily_summary import HISTOGRAM_LABELS, PILLARS
from esg_assets.defs.summary.summary_report import SummaryReport
from esg_assets.defs.summary.trends import TREND_METRICS

# The UI shows this many failed accounts; the JSON file lists more, the warehouse all of them.
FAILED_ACCOUNTS_IN_MARKDOWN = 50

# Inline Markdown: code, emphasis, links and images, table columns, strike-through (HTML is escaped apart).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


# Account ids need no escaping: only letters, digits, "-", "_" and "." pass the AMS walk
# (api-contract section 2).
def cell(text: object) -> str:
    """Free text made inert in a Markdown table cell: no HTML, formatting, line breaks or column breaks."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def to_markdown(report: SummaryReport) -> str:
    s = report.summary
    lines = [
        f"# ESG ratings summary for {s.partition_date.isoformat()}",
        "",
        f"**{s.total_accounts:,} active accounts**, success rate **{fmt.percent(s.success_rate)}**, "
        f"failure rate **{fmt.percent(s.failure_rate)}**.",
        "",
        "| Processing Status | Accounts | Share |",
        "|---|---:|---:|",
    ]
    for status in ProcessingStatus:
        number = s.counts[status.value]
        lines.append(f"| {status.value} | {number:,} | {fmt.share(number, s.total_accounts)} |")
    lines += ["", "| Average score | Value |", "|---|---:|"]
    lines += [f"| {pillar} | {fmt.score(average)} |" for pillar, average in s.average_scores.items()]
    lines += ["", "| Primary ESG Focus | Accounts | Share |", "|---|---:|---:|"]
    lines += [
        f"| {pillar} | {number:,} | {fmt.share(number, s.total_accounts)} |"
        for pillar, number in s.primary_focus.items()
    ]
    lines += ["", "## Score distribution (accounts per score bin)", ""]
    lines += ["| Score | " + " | ".join(PILLARS) + " |", "|---|" + "---:|" * len(PILLARS)]
    for index, label in enumerate(HISTOGRAM_LABELS):
        lines.append(
            f"| {label} | " + " | ".join(f"{s.score_histograms[p][index]:,}" for p in PILLARS) + " |"
        )
    lines += _changes(report) + _performance(report) + _checks(report) + _trends(report) + _failed(report)
    lines += [
        "",
        "_Charts: in the HTML summary file (FirmESGSummary_YYYYMMDD.html) next to the ratings file._",
        "",
        support_line(report.support_url),
    ]
    return "\n".join(lines) + "\n"


def _changes(report: SummaryReport) -> list[str]:
    changes, s = report.changes, report.summary
    if changes.previous_date is None:
        return [
            "",
            "## Change since the previous day",
            "",
            "No earlier day in the warehouse to compare with.",
        ]
    lines = [
        "",
        f"## Change since {changes.previous_date.isoformat()}",
        "",
        "| | Previous | This day | Change |",
        "|---|---:|---:|---:|",
        f"| Active accounts | {changes.previous_total_accounts:,} | {s.total_accounts:,} | "
        f"{fmt.signed_count(s.total_accounts - changes.previous_total_accounts)} |",
        f"| Success rate | {fmt.percent(changes.previous_success_rate)} | {fmt.percent(s.success_rate)} | "
        f"{fmt.points_change(s.success_rate, changes.previous_success_rate)} |",
        f"| Average Overall | {fmt.score(changes.previous_average_overall)} | "
        f"{fmt.score(s.average_scores['Overall'])} | "
        f"{fmt.score_change(s.average_scores['Overall'], changes.previous_average_overall)} |",
        "",
        f"New accounts: **{changes.new_accounts:,}**{_ids(changes.new_account_ids, changes.new_accounts)}",
        "",
        f"Closed (no longer active): **{changes.closed_accounts:,}**"
        f"{_ids(changes.closed_account_ids, changes.closed_accounts)}",
        "",
    ]
    if not changes.movers:
        return lines + ["No Overall score changed."]
    lines += [
        "Biggest Overall score movers:",
        "",
        "| Account ID | Previous | Now | Change |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {m.account_id} | {fmt.score(m.previous)} | {fmt.score(m.current)} | "
        f"{fmt.signed_score(m.change)} |"
        for m in changes.movers
    ]
    return lines


def _ids(ids: tuple[str, ...], total: int) -> str:
    if not ids:
        return ""
    more = f" and {total - len(ids):,} more" if total > len(ids) else ""
    return ": " + ", ".join(ids) + more


def _performance(report: SummaryReport) -> list[str]:
    lines = ["", "## Run performance", ""]
    performance, resources = report.performance, report.resources
    rows = []
    if performance is None:
        lines += ["No ratings fetch recorded for this day.", ""]
    else:
        fetch = performance.fetch
        source = "this run" if performance.this_run else f"the day's last fetch (run {fetch.run_id})"
        lines += [f"Ratings fetch of {source}:", ""]
        rows = [
            f"| Run time up to this summary | {fmt.duration(performance.run_seconds)} |",
            f"| Ratings fetch duration | {fmt.duration(performance.fetch_seconds)} |",
            f"| Accounts fetched / resumed | {fetch.accounts_fetched:,} / {fetch.accounts_resumed:,} |",
            f"| API requests | {fetch.api_requests:,} |",
            f"| Requests per second | {fmt.per_second(fetch.requests_per_second)} |",
            f"| Retries | {fetch.retries:,} |",
            f"| 429 Too Many Requests | {fetch.throttled:,} |",
            f"| 304 Not Modified (ratings reused) | {fetch.not_modified:,} |",
        ]
    if resources is not None:
        rows += [
            f"| CPU time of the run worker, up to this summary | {fmt.cpu_seconds(resources.cpu_seconds)} |",
            f"| Peak memory (RSS) of the run worker | {fmt.size(resources.peak_rss_bytes)} |",
            f"| Warehouse size | {fmt.size(resources.warehouse_size_bytes)} |",
            f"| Largest DuckDB spill to disk | {fmt.size(resources.spill_bytes)} |",
        ]
    if not rows:
        return lines[:-1]
    return lines + ["| | Value |", "|---|---:|", *rows]


def _checks(report: SummaryReport) -> list[str]:
    lines = ["", "## Checks", ""]
    if not report.checks:
        return lines + ["No check was evaluated before this summary was written."]
    lines += ["| Check | On | Outcome | Severity | Blocking | Numbers |", "|---|---|---|---|---|---|"]
    for check in report.checks:
        numbers = "; ".join(f"{name}: {fmt.check_number(value)}" for name, value in check.metadata.items())
        lines.append(
            f"| {check.name} | {check.asset} | {fmt.check_outcome(check.passed)} | {check.severity} | "
            f"{'yes' if check.blocking else 'no'} | {cell(numbers)} |"
        )
    return lines + ["", fmt.CHECKS_NOTE]


def _trends(report: SummaryReport) -> list[str]:
    windows = report.trends.windows
    lines = ["", "## Trends (averages per day)", ""]
    lines += ["| | " + " | ".join(f"{w.days} days" for w in windows) + " |", "|---|" + "---:|" * len(windows)]
    lines.append("| Days with data | " + " | ".join(f"{w.days_with_data}" for w in windows) + " |")
    for name, label in TREND_METRICS:
        lines.append(f"| {label} | " + " | ".join(fmt.trend_value(w, name) for w in windows) + " |")
    return lines


def _failed(report: SummaryReport) -> list[str]:
    s = report.summary
    lines = ["", f"## Failed accounts ({s.failed_total:,})", ""]
    if not s.failed_total:
        return lines + ["None."]
    lines += ["| Account ID | HTTP status | Reason |", "|---|---:|---|"]
    for failed in s.failed_accounts[:FAILED_ACCOUNTS_IN_MARKDOWN]:
        lines.append(f"| {failed.account_id} | {failed.http_status or ''} | {cell(failed.reason or '')} |")
    if s.failed_total > FAILED_ACCOUNTS_IN_MARKDOWN:
        lines.append(
            f"\n... and {s.failed_total - FAILED_ACCOUNTS_IN_MARKDOWN:,} more: the summary's JSON file lists "
            "the first ones, the warehouse table esg_ratings every one."
        )
    return lines
