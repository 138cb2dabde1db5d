"""A step of ``esg_ratings``: one shard's accounts fetched in parallel under its share of the API's limits."""

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from dagster import OpExecutionContext, Out, Output, op

from esg_assets.core.partitions import partition_day
from esg_assets.core.ratings.model import FetchTask, ProcessingStatus, RatingResult
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.fetch_pool import fetch_ratings
from esg_assets.defs.daily_ratings.fetch_progress import report_progress
from esg_assets.defs.daily_ratings.rating_result import rating_result
from esg_assets.defs.daily_ratings.ratings_shards import Shard
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.ratings import iter_fetch_tasks
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.resource_figures import peak_rss_bytes
from esg_assets.lib.warehouse.shard_stores import (
    ShardFetch,
    record_shard_fetch,
    stage_shard_todo,
    store_path,
    store_tasks,
    write_shard_results,
)

# Per-account reasons go to the process log (and the warehouse), not the Dagster event log: a bad day can
# have tens of thousands of them.
account_log = logging.getLogger("esg_assets.accounts")

_TASK_BATCH = 2_000


@op(
    out=Out(Shard),
    description="Fetches the ratings of one shard's accounts that have no final result in its store yet, "
    "with its share of ESG_RATE_LIMIT_PER_SECOND and ESG_MAX_IN_FLIGHT, writing them to its store.",
)
@logged_step
def fetch_shard(
    context: OpExecutionContext,
    shard: Shard,
    firm_api: FirmApiResource,
    warehouse: WarehouseResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held by the run (or its worker): one run of the day at a time
):
    day = partition_day(context.partition_key)
    run_id = context.run.run_id
    rate = shard.rate_share(firm_api.rate_limit_per_second)
    in_flight = shard.in_flight_share(firm_api.max_in_flight)
    started_at, cpu_at_start = datetime.now(timezone.utc), time.process_time()
    store = store_path(Path(warehouse.path), day, shard.index, shard.count)
    with (
        firm_api.open_clients(rate, in_flight) as clients,
        warehouse.connect_shard_store(store) as connection,
    ):
        to_fetch, total = stage_shard_todo(connection), store_tasks(connection)
        context.log.info(
            f"shard {shard.label}: {to_fetch} of its {total} accounts to fetch for {day}; {rate:g}/s, "
            f"{in_flight} in flight, {clients.workers} workers"
        )
        stats = clients.esg.stats

        def fetch(task: FetchTask) -> RatingResult:
            return rating_result(task, clients.esg.fetch_rating(task.account_id, day, task.etag), day)

        def store_results(results: list[RatingResult]) -> None:
            write_shard_results(connection, day, run_id, results)
            for result in results:
                if result.status is not ProcessingStatus.SUCCESSFUL:
                    account_log.warning(
                        "account %s %s: %s", result.account_id, result.status.value, result.error_reason
                    )

        clock, fetch_started_at = time.monotonic(), time.time()
        run_record = context.instance.get_run_record_by_id(run_id)
        run_started_at = (run_record.start_time if run_record else None) or started_at.timestamp()

        def report(done: int, elapsed: float, snapshot: dict) -> None:
            # Read by the projected_late and degraded sensors (esg_assets/defs/alerting/fetch_pace.py).
            report_progress(
                context.instance,
                context.partition_key,
                RatingsProgressMetadata(
                    run_id=run_id,
                    shard=shard.index + 1,
                    shards=shard.count,
                    done=done,
                    to_fetch=to_fetch,
                    requests=snapshot["requests"],
                    throttled_429=snapshot["throttled"],
                    elapsed_seconds=round(elapsed, 3),
                    fetch_started_at=fetch_started_at,
                    run_started_at=run_started_at,
                    rate_limit_per_second=float(rate),
                ),
            )

        def progress(done: int) -> None:
            elapsed = time.monotonic() - clock
            snapshot = stats.snapshot()
            per_second = snapshot["requests"] / elapsed if elapsed else 0.0
            remaining = (to_fetch - done) / (done / elapsed) if done else float("nan")
            context.log.info(
                f"shard {shard.label}: ratings {done}/{to_fetch} ({done / max(to_fetch, 1):.1%}), "
                f"{per_second:.1f} req/s, {snapshot['throttled']} 429s, {snapshot['retries']} retries, "
                f"ETA {remaining / 60:.1f} min"
            )
            report(done, elapsed, snapshot)

        fetch_ratings(
            iter_fetch_tasks(connection, _TASK_BATCH),
            fetch,
            workers=clients.workers,
            on_results=store_results,
            on_progress=progress,
        )
        elapsed = time.monotonic() - clock
        requests = stats.snapshot()
        report(to_fetch, elapsed, requests)  # the fetch is over: nothing left to project
        record_shard_fetch(
            connection,
            ShardFetch(
                run_id=run_id,
                started_at=started_at,
                finished_at=datetime.now(timezone.utc),
                fetched=to_fetch,
                api_requests=requests["requests"],
                retries=requests["retries"],
                throttled=requests["throttled"],
                not_modified=requests["not_modified"],
            ),
        )
    context.log.info(
        f"shard {shard.label}: {to_fetch} accounts in {elapsed:.1f} s, {requests['requests']} requests "
        f"({requests['requests'] / elapsed if elapsed > 0 else 0.0:.1f}/s), {requests['retries']} retries, "
        f"{requests['throttled']} 429s, {requests['not_modified']} not modified"
    )
    return Output(
        shard,
        metadata={
            "shard": shard.label,
            "fetched": to_fetch,
            "api_requests": requests["requests"],
            "retries": requests["retries"],
            "throttled_429": requests["throttled"],
            "not_modified_304": requests["not_modified"],
            "fetch_seconds": round(elapsed, 2),
            # This process's CPU (all its threads) over the step: with a process per step, the shard's own.
            "cpu_seconds": round(time.process_time() - cpu_at_start, 3),
            "peak_rss_bytes": peak_rss_bytes(),
        },
    )
