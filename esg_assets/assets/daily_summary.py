"""``daily_summary``: the day's summary for compliance and administrators, in the UI, next to the file, by email."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from esg_assets.assets.ratings_file import ratings_file
from esg_assets.assets.run_timing import run_started_at
from esg_assets.observability.run_logging import logged_step
from esg_assets.partitions import daily_partitions, partition_day
from esg_assets.ratings.model import ProcessingStatus
from esg_assets.reporting.charts import draw_charts
from esg_assets.reporting.summary_email import OFF, SENT, send_summary_email
from esg_assets.reporting.summary_html import to_html
from esg_assets.reporting.summary_json import to_json
from esg_assets.reporting.summary_markdown import to_markdown
from esg_assets.reporting.summary_report import SummaryReport, build_summary_report
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.resources.warehouse import WarehouseResource
from esg_assets.storage.file_names import summary_file_name


@asset(
    partitions_def=daily_partitions,
    deps=[ratings_file],
    group_name="esg_daily",
    kinds={"html", "markdown"},
    description="Total accounts, success rate, counts by status, average Overall/E/S/G scores, Primary ESG "
    "Focus, score histograms, failed account ids (no names), change since the previous day, the run's "
    "performance and 30/90-day trends. Published as FirmESGSummary_YYYYMMDD.html/.md/.json and emailed to "
    "ESG_SUMMARY_EMAIL_TO when set.",
)
@logged_step
def daily_summary(
    context: AssetExecutionContext, warehouse: WarehouseResource, report_store: ReportStoreResource
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    with warehouse.connect() as connection:
        report = build_summary_report(connection, day, context.run.run_id, run_started_at(context))
    summary = report.summary
    charts = draw_charts(report)
    markdown = to_markdown(report)
    store = report_store.store()
    locations = {}
    for extension, content in (("html", to_html(report, charts)), ("md", markdown), ("json", to_json(report))):
        name = summary_file_name(day, extension)
        with store.publish(name) as sink:
            sink.write(content.encode("utf-8"))
        locations[extension] = store.uri(name)
    context.log.info(
        f"summary for {day}: {summary.total_accounts} accounts, success rate {summary.success_rate:.2%}, "
        f"{summary.failed_total} failed; {locations['html']}"
    )
    # After the files: a relay that is down costs the email, never the day's summary.
    delivery = send_summary_email(report, charts)
    if delivery.status == SENT:
        context.log.info(f"summary email {delivery.detail}")
    elif delivery.status != OFF:
        context.log.warning(f"summary email not sent: {delivery.detail}")
    return MaterializeResult(
        metadata={
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
            "html_location": MetadataValue.path(locations["html"]),
            "markdown_location": MetadataValue.path(locations["md"]),
            "json_location": MetadataValue.path(locations["json"]),
            "email_status": MetadataValue.text(delivery.status),
            "email_detail": MetadataValue.text(delivery.detail),
        }
    )


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
