"""``ratings_file``: the day's FirmESGRatings CSV, written as an encrypted stream and published atomically."""

from collections import Counter
from collections.abc import Iterable, Iterator

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from esg_assets.assets.esg_ratings import esg_ratings
from esg_assets.crypto.stream_cipher import encrypting_writer
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
from esg_assets.storage.file_names import errors_file_name, ratings_file_name
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
    "error log FirmESGRatings_YYYYMMDD_errors.csv.enc (accounts not Successful, ids only).",
)
def ratings_file(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
    firm_api: FirmApiResource,
    data_quality: DataQualityResource,
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    store = report_store.store()
    key_ring = report_store.key_ring()
    name = ratings_file_name(day)
    counts: Counter = Counter()
    with warehouse.connect() as connection:
        missing = unrated_accounts(connection, day)
        if missing:
            raise Failure(
                f"{missing} active accounts of {day} have no rating row; materialize esg_ratings for "
                f"{day} first. No file was written."
            )
        with store.publish(name) as sink, encrypting_writer(sink, key_ring) as plaintext:
            rows = write_ratings_csv(_counting(iter_file_rows(connection, day), counts), plaintext)
        errors_name = errors_file_name(day)
        with store.publish(errors_name) as sink, encrypting_writer(sink, key_ring) as plaintext:
            error_rows = write_errors_csv(iter_error_rows(connection, day), plaintext)
        # Read what was published back, as a reader would: it must decrypt, parse, and hold every account once.
        sample = reconciliation_sample(connection, day, data_quality.reconciliation_sample)
        with store.open(name) as published:
            report = read_back_published_file(published, key_ring, iter_snapshot_ids(connection, day), sample)
    with firm_api.open_clients() as clients:
        reconciliation = reconcile(
            report.sampled_rows,
            lambda account_id: rating_result(
                FetchTask(account_id), clients.esg.fetch_rating(account_id, day), day
            ),
        )
    location = store.uri(name)
    context.log.info(f"published {rows} rows for {day} to {location} (key {key_ring.primary_id})")
    return MaterializeResult(
        check_results=file_check_results(report, reconciliation),
        metadata={
            "rows": rows,
            **{f"rows_{status.value.lower()}": counts[status.value] for status in ProcessingStatus},
            "location": MetadataValue.path(location),
            "error_log_rows": error_rows,
            "error_log_location": MetadataValue.path(store.uri(errors_name)),
            "key_id": key_ring.primary_id,
        },
    )
