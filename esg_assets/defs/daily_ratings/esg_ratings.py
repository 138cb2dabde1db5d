"""``esg_ratings``: each active account's ESG ratings for the day, fetched in parallel under API limits."""

import logging
import time
from datetime import datetime, timezone

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from esg_assets.core.keys import ACTIVE_ACCOUNTS, DAILY_GROUP, ESG_RATINGS
from esg_assets.core.partitions import daily_partitions, partition_day
from esg_assets.core.ratings.model import FetchTask, ProcessingStatus, RatingResult
from esg_assets.core.run_metadata import RatingsMetadata, RatingsProgressMetadata
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.fetch_pool import fetch_ratings
from esg_assets.defs.daily_ratings.fetch_progress import report_progress
from esg_assets.defs.daily_ratings.rating_result import rating_result
from esg_assets.defs.quality.check_results import failure_rate_result, failure_rate_spec
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.ratings import (
    UnknownAccountsError,
    iter_fetch_tasks,
    plan_fetch,
    status_counts,
    write_results,
)
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.resource_figures import resource_figures
from esg_assets.lib.warehouse.run_statistics import FetchRunStatistics, record_fetch_run

# Per-account reasons go to the process log (and the warehouse), not the Dagster event log: a bad day can
# have tens of thousands of them.
account_log = logging.getLogger("esg_assets.accounts")

_TASK_BATCH = 2_000


class EsgRatingsConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Ask the API again for every account of the day, not only those without a final result. "
        "Requests stay conditional (If-None-Match), so unchanged ratings cost a 304.",
    )
    accounts: list[str] = Field(
        default_factory=list,
        description="Re-run only these account ids of the day and merge them into the day's results.",
    )


@asset(
    key=ESG_RATINGS,
    partitions_def=daily_partitions,
    deps=[ACTIVE_ACCOUNTS],
    group_name=DAILY_GROUP,
    kinds={"duckdb"},
    check_specs=[failure_rate_spec],
    description="One row per active account with its six ESG values, analysis date, Processing Status, error "
    "reason, attempts, HTTP status, ETag and fetch time. Table esg_ratings. Resumes: accounts that already "
    "have a final result for the day are not fetched again.",
)
@logged_step
def esg_ratings(
    context: AssetExecutionContext,
    config: EsgRatingsConfig,
    firm_api: FirmApiResource,
    warehouse: WarehouseResource,
    data_quality: DataQualityResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held for the whole run: one run of the day at a time
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    started_at = datetime.now(timezone.utc)
    with firm_api.open_clients() as clients, warehouse.connect() as connection:
        try:
            plan = plan_fetch(
                connection, day, full_refresh=config.full_refresh, only_accounts=config.accounts or None
            )
        except UnknownAccountsError as error:
            raise Failure(description=str(error)) from None
        context.log.info(
            f"{plan.to_fetch} of {plan.accounts_total} accounts to fetch for {day} "
            f"({plan.resumed} already final, {plan.with_etag} conditional); "
            f"{firm_api.rate_limit_per_second}/s, {firm_api.max_in_flight} in flight, "
            f"{clients.workers} workers"
        )
        stats = clients.esg.stats

        def fetch(task: FetchTask) -> RatingResult:
            return rating_result(task, clients.esg.fetch_rating(task.account_id, day, task.etag), day)

        def store(results: list[RatingResult]) -> None:
            write_results(connection, day, context.run.run_id, results)
            for result in results:
                if result.status is not ProcessingStatus.SUCCESSFUL:
                    account_log.warning(
                        "account %s %s: %s", result.account_id, result.status.value, result.error_reason
                    )

        clock, fetch_started_at = time.monotonic(), time.time()
        run_record = context.instance.get_run_record_by_id(context.run.run_id)
        run_started_at = (run_record.start_time if run_record else None) or started_at.timestamp()

        def report(done: int, elapsed: float, snapshot: dict) -> None:
            # Read by the projected_late and degraded sensors (esg_assets/defs/alerting/fetch_pace.py).
            report_progress(
                context.instance,
                context.partition_key,
                RatingsProgressMetadata(
                    run_id=context.run.run_id,
                    done=done,
                    to_fetch=plan.to_fetch,
                    requests=snapshot["requests"],
                    throttled_429=snapshot["throttled"],
                    elapsed_seconds=round(elapsed, 3),
                    fetch_started_at=fetch_started_at,
                    run_started_at=run_started_at,
                    rate_limit_per_second=float(firm_api.rate_limit_per_second),
                ),
            )

        def progress(done: int) -> None:
            elapsed = time.monotonic() - clock
            snapshot = stats.snapshot()
            rate = snapshot["requests"] / elapsed if elapsed else 0.0
            remaining = (plan.to_fetch - done) / (done / elapsed) if done else float("nan")
            context.log.info(
                f"ratings {done}/{plan.to_fetch} ({done / max(plan.to_fetch, 1):.1%}), {rate:.1f} req/s, "
                f"{snapshot['throttled']} 429s, {snapshot['retries']} retries, ETA {remaining / 60:.1f} min"
            )
            report(done, elapsed, snapshot)

        fetch_ratings(
            iter_fetch_tasks(connection, _TASK_BATCH),
            fetch,
            workers=clients.workers,
            on_results=store,
            on_progress=progress,
        )
        elapsed = time.monotonic() - clock
        requests = stats.snapshot()
        report(plan.to_fetch, elapsed, requests)  # the fetch is over: nothing left to project
        run = FetchRunStatistics(
            partition_date=day,
            run_id=context.run.run_id,
            started_at=started_at,
            finished_at=datetime.now(timezone.utc),
            accounts_total=plan.accounts_total,
            accounts_fetched=plan.to_fetch,
            accounts_resumed=plan.resumed,
            api_requests=requests["requests"],
            retries=requests["retries"],
            throttled=requests["throttled"],
            not_modified=requests["not_modified"],
            requests_per_second=requests["requests"] / elapsed if elapsed > 0 else 0.0,
        )
        record_fetch_run(connection, run)
        counts = status_counts(connection, day)

    context.log.info(
        f"ratings for {day}: {counts} in {elapsed:.1f} s, {run.api_requests} requests "
        f"({run.requests_per_second:.1f}/s), {run.retries} retries, {run.throttled} 429s, "
        f"{run.not_modified} not modified"
    )
    return MaterializeResult(
        check_results=[failure_rate_result(counts, data_quality.failure_rate_threshold())],
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
                fetch_seconds=round(elapsed, 2),
            ).to_metadata(),
            **resource_figures(warehouse).to_metadata(),
            "table": MetadataValue.text("esg_ratings"),
        },
    )
