"""``ratings_file``: the day's FirmESGRatings CSV, written as an encrypted stream and published atomically."""

from collections import Counter
from collections.abc import Iterable, Iterator

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from esg_assets.assets.esg_ratings import esg_ratings
from esg_assets.crypto.stream_cipher import encrypting_writer
from esg_assets.partitions import daily_partitions, partition_day
from esg_assets.ratings.ratings_csv import write_ratings_csv
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.resources.warehouse import WarehouseResource
from esg_assets.storage.file_names import ratings_file_name
from esg_assets.warehouse.ratings import iter_file_rows, unrated_accounts

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
    description="FirmESGRatings_YYYYMMDD.csv: one row per active account, sorted by Account ID, encrypted "
    "(AES-256-GCM, streaming) and published to ESG_OUTPUT_URI as FirmESGRatings_YYYYMMDD.csv.enc.",
)
def ratings_file(
    context: AssetExecutionContext, warehouse: WarehouseResource, report_store: ReportStoreResource
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
    location = store.uri(name)
    context.log.info(f"published {rows} rows for {day} to {location} (key {key_ring.primary_id})")
    return MaterializeResult(
        metadata={
            "rows": rows,
            **{f"rows_{status.lower()}": count for status, count in sorted(counts.items())},
            "location": MetadataValue.path(location),
            "key_id": key_ring.primary_id,
        }
    )
