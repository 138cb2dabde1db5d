"""``run_history``: one row per materialization of the day in DuckDB: timings, counts, API and resources."""

from dataclasses import replace
from datetime import datetime, timezone

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from esg_assets.core.keys import DAILY_GROUP, DAILY_SUMMARY, RUN_HISTORY
from esg_assets.core.partitions import daily_partitions, partition_day
from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.run_timing import run_started_at
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.ratings import status_counts
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.resource_figures import resource_figures
from esg_assets.lib.warehouse.run_statistics import (
    RunHistoryRow,
    fetch_runs_of,
    record_run_history,
    record_warehouse_size,
)


@asset(
    key=RUN_HISTORY,
    partitions_def=daily_partitions,
    deps=[DAILY_SUMMARY],
    group_name=DAILY_GROUP,
    kinds={"duckdb"},
    description="Table run_history: partition, run id, start, end, duration, accounts, Successful/Partial/"
    "Failed counts, API requests, retries, 429s, 304s, throughput, and the run worker's CPU seconds, peak "
    "RSS, the warehouse's size and DuckDB's largest spill, of each materialization.",
)
@logged_step
def run_history(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held for the whole run: one run of the day at a time
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    finished_at = datetime.now(timezone.utc)
    started_at = run_started_at(context) or finished_at
    run_id = context.run.run_id
    with warehouse.connect() as connection:
        counts = status_counts(connection, day)
        # Zero requests when this run did not include the ratings step (e.g. only the file was republished).
        fetch = fetch_runs_of(connection, day, run_id)
    figures = resource_figures(warehouse)
    row = RunHistoryRow(
        partition_date=day,
        run_id=run_id,
        started_at=started_at,
        finished_at=finished_at,
        duration_seconds=(finished_at - started_at).total_seconds(),
        accounts=sum(counts.values()),
        successful=counts[ProcessingStatus.SUCCESSFUL.value],
        partial=counts[ProcessingStatus.PARTIAL.value],
        failed=counts[ProcessingStatus.FAILED.value],
        api_requests=fetch.api_requests if fetch else 0,
        retries=fetch.retries if fetch else 0,
        throttled=fetch.throttled if fetch else 0,
        not_modified=fetch.not_modified if fetch else 0,
        throughput_per_second=fetch.requests_per_second if fetch else 0.0,
        cpu_seconds=figures.cpu_seconds,
        peak_rss_bytes=figures.peak_rss_bytes,
        warehouse_size_bytes=figures.warehouse_size_bytes,
        spill_bytes=figures.spill_bytes,
    )
    with warehouse.connect() as connection:
        record_run_history(connection, row)
        (runs_of_day,) = connection.execute(
            "SELECT count(*) FROM run_history WHERE partition_date = ?", [day]
        ).fetchone()
    figures = replace(figures, warehouse_size_bytes=_record_final_size(warehouse, day, run_id))
    return MaterializeResult(
        metadata={
            "duration_seconds": round(row.duration_seconds, 2),
            "accounts": row.accounts,
            "successful": row.successful,
            "partial": row.partial,
            "failed": row.failed,
            "api_requests": row.api_requests,
            "throughput_per_second": round(row.throughput_per_second, 2),
            "materializations_of_day": runs_of_day,
            **figures.to_metadata(),
            "table": MetadataValue.text("run_history"),
        }
    )


def _record_final_size(warehouse: WarehouseResource, day, run_id: str) -> int:
    """The DuckDB file's size after the run, kept in the run's own row; returns it.

    Writing the row can grow the file by a block, so the size is measured once the row is in, written, and
    measured again until the row holds the size the file has (measured: the first write settles it).
    """
    size = warehouse.size_bytes()
    for _ in range(3):
        with warehouse.connect() as connection:
            record_warehouse_size(connection, day, run_id, size)
        after = warehouse.size_bytes()
        if after == size:
            break
        size = after
    return size
