"""``ratings_file``: the day's FirmESGRatings CSV, written as an encrypted stream and published atomically,
with its error log and, last, the manifest of both."""

from collections import Counter
from collections.abc import Iterable, Iterator

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from esg_assets.access.caller import current_caller
from esg_assets.assets.esg_ratings import esg_ratings
from esg_assets.observability.run_logging import logged_step
from esg_assets.partitions import daily_partitions, partition_day
from esg_assets.quality.check_results import file_check_results, file_check_specs
from esg_assets.quality.file_checks import read_back_published_file
from esg_assets.quality.reconciliation import reconcile
from esg_assets.ratings.model import ProcessingStatus
from esg_assets.ratings.rating_result import FetchTask, rating_result
from esg_assets.ratings.errors_csv import write_errors_csv
from esg_assets.ratings.ratings_csv import write_ratings_csv
from esg_assets.resources.data_quality import DataQualityResource
from esg_assets.resources.firm_api import FirmApiResource
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.resources.warehouse import WarehouseResource
from esg_assets.storage.file_names import errors_file_name, manifest_file_name, ratings_file_name
from esg_assets.storage.manifest import ERRORS_KIND, RATINGS_KIND
from esg_assets.storage.publishing import DayPublisher
from esg_assets.warehouse.ratings import (
    iter_error_rows,
    iter_file_rows,
    iter_snapshot_ids,
    reconciliation_sample,
    unrated_accounts,
)

_STATUS_COLUMN = 9


def _counting(rows: Iterable[tuple], counts: Counter) -> Iterator[tuple]:
    for row in rows:
        counts[row[_STATUS_COLUMN]] += 1
        yield row


@asset(
    partitions_def=daily_partitions,
    deps=[esg_ratings],
    group_name="esg_daily",
    kinds={"csv"},
    check_specs=file_check_specs,
    description="FirmESGRatings_YYYYMMDD.csv: one row per active account, sorted by Account ID, encrypted "
    "(AES-256-GCM, streaming) and published to ESG_OUTPUT_URI as FirmESGRatings_YYYYMMDD.csv.enc, with the "
    "error log FirmESGRatings_YYYYMMDD_errors.csv.enc (accounts not Successful, ids only) and, last, "
    "FirmESGRatings_YYYYMMDD.manifest.json (row counts, SHA-256 of each file, key id). Each publication is "
    "recorded in the audit log (ESG_AUDIT_LOG_DIR).",
)
@logged_step
def ratings_file(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
    firm_api: FirmApiResource,
    data_quality: DataQualityResource,
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    store = report_store.store()
    keys = report_store.key_source()
    audit = report_store.audit_log()
    publisher = DayPublisher(store, keys, audit, current_caller(audit.directory), day, context.run.run_id)
    name = ratings_file_name(day)
    counts: Counter = Counter()
    with warehouse.connect() as connection:
        missing = unrated_accounts(connection, day)
        if missing:
            raise Failure(
                f"{missing} active accounts of {day} have no rating row; materialize esg_ratings for "
                f"{day} first. No file was written."
            )
        rows = _counting(iter_file_rows(connection, day), counts)
        ratings = publisher.publish_encrypted(name, RATINGS_KIND, lambda out: write_ratings_csv(rows, out))
        errors_name = errors_file_name(day)
        errors = publisher.publish_encrypted(
            errors_name, ERRORS_KIND, lambda out: write_errors_csv(iter_error_rows(connection, day), out)
        )
        # Read what was published back, as a reader would: it must decrypt, parse, and hold every account once.
        sample = reconciliation_sample(connection, day, data_quality.reconciliation_sample)
        with store.open(name) as published:
            report = read_back_published_file(published, keys, iter_snapshot_ids(connection, day), sample)
    publisher.publish_manifest(counts, [ratings, errors])
    with firm_api.open_clients() as clients:
        reconciliation = reconcile(
            report.sampled_rows,
            lambda account_id: rating_result(
                FetchTask(account_id), clients.esg.fetch_rating(account_id, day), day
            ),
        )
    location = store.uri(name)
    checkpoint = audit.checkpoint()
    context.log.info(f"published {ratings.rows} rows for {day} to {location} (key {ratings.key_id})")
    return MaterializeResult(
        check_results=file_check_results(report, reconciliation),
        metadata={
            "rows": ratings.rows,
            **{f"rows_{status.value.lower()}": counts[status.value] for status in ProcessingStatus},
            "location": MetadataValue.path(location),
            "error_log_rows": errors.rows,
            "error_log_location": MetadataValue.path(store.uri(errors_name)),
            "manifest_location": MetadataValue.path(store.uri(manifest_file_name(day))),
            "size_bytes": ratings.ciphertext_bytes,  # the published file, as run metrics report it
            "sha256": ratings.ciphertext_sha256,
            "key_id": ratings.key_id,
            # The audit log's last record, kept in Dagster's event log too: a second, separate witness.
            "audit_checkpoint": f"{checkpoint.seq}:{checkpoint.hash}" if checkpoint else "none",
        },
    )
