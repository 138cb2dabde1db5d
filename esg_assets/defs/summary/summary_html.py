"""The summary report as a self-contained HTML page: the file next to the ratings file, and the email body."""

from __future__ import annotations

import base64
from collections.abc import Callable

from jinja2 import Environment, StrictUndefined

from esg_assets.core.support_page import support_line
from esg_assets.defs.summary import formatting as fmt
from esg_assets.defs.summary.charts import Chart
from esg_assets.defs.summary.daily_summary import HISTOGRAM_LABELS
from esg_assets.defs.summary.summary_report import SummaryReport
from esg_assets.defs.summary.summary_template import SUMMARY_TEMPLATE
from esg_assets.defs.summary.trends import TREND_METRICS

# The page shows this many failed accounts; the JSON file lists more, the warehouse all of them.
FAILED_ACCOUNTS_IN_HTML = 200

_TEMPLATE = Environment(autoescape=True, undefined=StrictUndefined).from_string(SUMMARY_TEMPLATE)


def embedded_png(chart: Chart) -> str:
    """A data: URI, so the page needs nothing but itself."""
    return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")


def to_html(
    report: SummaryReport,
    charts: list[Chart],
    image_source: Callable[[Chart], str] = embedded_png,
    failed_accounts_shown: int = FAILED_ACCOUNTS_IN_HTML,
) -> str:
    """The page; ``image_source`` says where each chart's image comes from (a data: URI, or cid: in email)."""
    return _TEMPLATE.render(
        s=report.summary,
        changes=report.changes,
        performance=report.performance,
        resources=report.resources,
        checks=report.checks,
        checks_note=fmt.CHECKS_NOTE,
        trends=report.trends,
        generated_at=report.generated_at.strftime("%Y-%m-%d %H:%M:%S"),
        failed_accounts=report.summary.failed_accounts[:failed_accounts_shown],
        histogram_labels=HISTOGRAM_LABELS,
        trend_metrics=TREND_METRICS,
        fmt=fmt,
        charts={chart.name: chart for chart in charts},
        image_source=image_source,
        support_url=report.support_url,
        support_text=support_line(""),
    )
