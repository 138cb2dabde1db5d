"""``daily_summary``: the day's summary for compliance and administrators, in the UI and next to the file."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from esg_assets.assets.ratings_file import ratings_file
from esg_assets.partitions import daily_partitions, partition_day
from esg_assets.ratings.model import ProcessingStatus
from esg_assets.reporting.daily_summary import build_daily_summary
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.resources.warehouse import WarehouseResource
from esg_assets.storage.file_names import summary_file_name


@asset(
    partitions_def=daily_partitions,
    deps=[ratings_file],
    group_name="esg_daily",
    kinds={"markdown"},
    description="Total accounts, success rate, counts by status, average Overall/E/S/G scores, Primary ESG "
    "Focus distribution and failed account ids (no names). Published as FirmESGSummary_YYYYMMDD.md/.json.",
)
def daily_summary(
    context: AssetExecutionContext, warehouse: WarehouseResource, report_store: ReportStoreResource
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    with warehouse.connect() as connection:
        summary = build_daily_summary(connection, day)
    store = report_store.store()
    markdown = summary.to_markdown()
    locations = {}
    for extension, content in (("md", markdown), ("json", summary.to_json())):
        name = summary_file_name(day, extension)
        with store.publish(name) as sink:
            sink.write(content.encode("utf-8"))
        locations[extension] = store.uri(name)
    context.log.info(
        f"summary for {day}: {summary.total_accounts} accounts, success rate {summary.success_rate:.2%}, "
        f"{len(summary.failed_accounts)} failed"
    )
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(markdown),
            "total_accounts": summary.total_accounts,
            "success_rate": round(summary.success_rate, 6),
            "failure_rate": round(summary.failure_rate, 6),
            **{f"{status.value.lower()}": summary.counts[status.value] for status in ProcessingStatus},
            **{
                f"average_{pillar.lower()}": float(value)
                for pillar, value in summary.average_scores.items()
                if value is not None
            },
            "markdown_location": MetadataValue.path(locations["md"]),
            "json_location": MetadataValue.path(locations["json"]),
        }
    )
