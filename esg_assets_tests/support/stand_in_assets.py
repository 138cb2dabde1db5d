"""Stand-ins for the daily assets (same keys, partitions, failure_rate check): sensors see real runs fast."""

import logging

from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

from esg_assets.config.environment import now
from esg_assets.config.resources import job_logs
from esg_assets.core.keys import ESG_RATINGS, RATINGS_FILE
from esg_assets.core.partitions import daily_partitions
from esg_assets.core.run_metadata import RatingsFileMetadata, RatingsMetadata, ResourceFigures
from esg_assets.defs.quality.check_results import failure_rate_result, failure_rate_spec
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step

account_log = logging.getLogger("esg_assets.accounts")

# The resource figures each stand-in records, as the real steps do (the file's are later, so larger).
RATINGS_FIGURES = ResourceFigures(cpu_seconds=1.5, peak_rss_bytes=100 << 20, warehouse_size_bytes=1 << 20)
FILE_FIGURES = ResourceFigures(2.5, 120 << 20, 2 << 20, spill_bytes=4096)


def stand_in_ratings(failed: int = 0, accounts: int = 100, error: str | None = None):
    """``esg_ratings`` with ``failed`` of ``accounts`` Failed (threshold 5%), or raising ``error``."""

    @asset(key=ESG_RATINGS, partitions_def=daily_partitions, check_specs=[failure_rate_spec])
    @logged_step
    def esg_ratings(context: AssetExecutionContext, job_logs: JobLogsResource) -> MaterializeResult:
        if error is not None:
            raise RuntimeError(error)
        counts = {"Successful": accounts - failed, "Partial": 0, "Failed": failed}
        # The ratings some accounts could not get are logged per account, as the real asset does.
        for number in range(failed):
            account_log.warning("account ACC-%07d Failed: HTTP 503 after 3 attempts", number)
        return MaterializeResult(
            check_results=[failure_rate_result(counts, 0.05)],
            metadata=RATINGS_FIGURES.to_metadata()
            | RatingsMetadata(
                accounts=accounts,
                successful=accounts - failed,
                partial=0,
                failed=failed,
                fetched_this_run=accounts,
                fetch_seconds=4.0,
                api_requests=accounts + failed * 2,
                retries=failed * 2,
                throttled_429=1,
                not_modified_304=0,
            ).to_metadata(),
        )

    return esg_ratings


def stand_in_ratings_file(error: str | None = None):
    """``ratings_file`` with 100 rows of 321 bytes, or raising ``error``."""

    @asset(key=RATINGS_FILE, partitions_def=daily_partitions, deps=[ESG_RATINGS])
    def ratings_file() -> MaterializeResult:
        if error is not None:
            raise RuntimeError(error)
        metadata = RatingsFileMetadata(rows=100, size_bytes=321).to_metadata()
        return MaterializeResult(metadata=metadata | FILE_FIGURES.to_metadata())

    return ratings_file


def run_stand_in_day(
    instance: DagsterInstance,
    partition: str,
    *,
    failed: int = 0,
    error: str | None = None,
    file_error: str | None = None,
):
    """A run of the day's ratings and file through the stand-ins; FAILURE when ``error`` (the ratings step)
    or ``file_error`` (the file step) is given."""
    return materialize(
        [stand_in_ratings(failed=failed, error=error), stand_in_ratings_file(file_error)],
        partition_key=partition,
        instance=instance,
        resources={"job_logs": job_logs(now)},
        raise_on_error=False,
    )
