"""The first step of ``esg_ratings``: fold in what earlier runs fetched, plan the day, stage each shard."""

from pathlib import Path

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    op,
)
from pydantic import Field

from esg_assets.core.partitions import partition_day
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.ratings_shards import RatingsShardsResource, Shard
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.ratings import FetchPlan, UnknownAccountsError, plan_fetch
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.shard_stores import (
    UnusableShardStoreError,
    dropped_message,
    fold_stores_of_day,
    stage_shard_stores,
)


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


@op(
    ins={"active_accounts": In(Nothing)},
    out={"plan": Out(FetchPlan), "shards": DynamicOut(Shard)},
    description="Folds in the shard stores an earlier run of the day left, decides which accounts to fetch "
    "and writes each shard's share of them to its own store.",
)
@logged_step
def plan_shards(
    context: OpExecutionContext,
    config: EsgRatingsConfig,
    warehouse: WarehouseResource,
    ratings_shards: RatingsShardsResource,
    firm_api: FirmApiResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held for the whole run: one run of the day at a time
):
    day = partition_day(context.partition_key)
    shards = ratings_shards.of_day()
    if len(shards) > firm_api.max_in_flight:
        raise Failure(
            description=f"ESG_SHARDS ({len(shards)}) is more than ESG_MAX_IN_FLIGHT "
            f"({firm_api.max_in_flight}): "
            "each shard needs at least one request in flight. Lower ESG_SHARDS."
        )
    database, keyring = Path(warehouse.path), warehouse.keyring()
    with warehouse.connect() as connection:
        try:
            folded = fold_stores_of_day(connection, database, day, keyring)
        except UnusableShardStoreError as error:
            raise Failure(description=str(error)) from None
        try:
            plan = plan_fetch(
                connection, day, full_refresh=config.full_refresh, only_accounts=config.accounts or None
            )
        except UnknownAccountsError as error:
            raise Failure(description=str(error)) from None
        sizes = stage_shard_stores(connection, database, day, len(shards), keyring)
    if folded.stores:
        context.log.info(
            f"kept {folded.results} results of an earlier run of {day} from {folded.stores} shard store(s)"
        )
    if folded.dropped:
        context.log.warning(dropped_message(folded, day))
    context.log.info(
        f"{plan.to_fetch} of {plan.accounts_total} accounts to fetch for {day} "
        f"({plan.resumed} already final, {plan.with_etag} conditional) in {len(shards)} shard(s) of "
        + ", ".join(str(size) for size in sizes)
        + f"; {firm_api.rate_limit_per_second}/s and {firm_api.max_in_flight} in flight shared among them"
    )
    yield Output(
        plan,
        "plan",
        metadata={"to_fetch": plan.to_fetch, "shards": len(shards), "kept_from_earlier_run": folded.results},
    )
    for shard in shards:
        yield DynamicOutput(shard, mapping_key=shard.mapping_key, output_name="shards")
