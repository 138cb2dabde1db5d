"""The last step of ``esg_ratings``: the shards' stores folded into the day's ratings, then its check."""

from datetime import datetime, timezone
from pathlib import Path

from dagster import Failure, OpExecutionContext, Out, Output, op

from esg_assets.core.partitions import partition_day
from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.core.run_metadata import RatingsMetadata
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.ratings_shards import Shard
from esg_assets.defs.quality.check_results import failure_rate_result, failure_rate_spec
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.ratings import FetchPlan, status_counts
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.resource_figures import resource_figures
from esg_assets.lib.warehouse.run_statistics import FetchRunStatistics, record_fetch_run
from esg_assets.lib.warehouse.shard_stores import (
    UnusableShardStoreError,
    dropped_message,
    fold_stores_of_day,
)

FAILURE_RATE_OUTPUT = failure_rate_spec.get_python_identifier()


@op(
    out={"result": Out(is_required=True), FAILURE_RATE_OUTPUT: Out(is_required=True)},
    description="Folds every shard's store into the esg_ratings table and evaluates the failure_rate check.",
)
@logged_step
def merge_shards(
    context: OpExecutionContext,
    plan: FetchPlan,
    shards: list[Shard],
    warehouse: WarehouseResource,
    data_quality: DataQualityResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held by the run (or its worker): one run of the day at a time
):
    day = partition_day(context.partition_key)
    database = Path(warehouse.path)
    merge_started = datetime.now(timezone.utc)
    with warehouse.connect() as connection:
        try:
            folded = fold_stores_of_day(connection, database, day, warehouse.keyring())
        except UnusableShardStoreError as error:
            raise Failure(description=str(error)) from None
        started_at = folded.first_started_at or merge_started
        finished_at = folded.last_finished_at or merge_started
        seconds = (finished_at - started_at).total_seconds()
        run = FetchRunStatistics(
            partition_date=day,
            run_id=context.run.run_id,
            started_at=started_at,
            finished_at=finished_at,
            accounts_total=plan.accounts_total,
            accounts_fetched=plan.to_fetch,
            accounts_resumed=plan.resumed,
            api_requests=folded.api_requests,
            retries=folded.retries,
            throttled=folded.throttled,
            not_modified=folded.not_modified,
            requests_per_second=folded.api_requests / seconds if seconds > 0 else 0.0,
        )
        record_fetch_run(connection, run)
        counts = status_counts(connection, day)
    if folded.dropped:
        context.log.warning(dropped_message(folded, day))
    context.log.info(
        f"ratings for {day}: {counts} from {len(shards)} shard(s) in {seconds:.1f} s, {run.api_requests} "
        f"requests ({run.requests_per_second:.1f}/s), {run.retries} retries, {run.throttled} 429s, "
        f"{run.not_modified} not modified"
    )
    yield Output(
        None,
        "result",
        metadata={
            **RatingsMetadata(
                accounts=plan.accounts_total,
                successful=counts[ProcessingStatus.SUCCESSFUL.value],
                partial=counts[ProcessingStatus.PARTIAL.value],
                failed=counts[ProcessingStatus.FAILED.value],
                fetched_this_run=plan.to_fetch,
                resumed_from_earlier_run=plan.resumed,
                api_requests=run.api_requests,
                retries=run.retries,
                throttled_429=run.throttled,
                not_modified_304=run.not_modified,
                requests_per_second=round(run.requests_per_second, 2),
                fetch_seconds=round(seconds, 2),
            ).to_metadata(),
            **resource_figures(warehouse).to_metadata(),
            "shards": len(shards),
            "table": "esg_ratings",
        },
    )
    yield failure_rate_result(counts, data_quality.failure_rate_threshold())
