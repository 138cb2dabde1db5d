"""``esg_ratings``: each active account's ESG ratings of the day, fetched in shards under the API's limits."""

from dagster import AssetIn, ConfigMapping, Nothing, graph_asset

from esg_assets.core.keys import ACTIVE_ACCOUNTS, DAILY_GROUP, ESG_RATINGS
from esg_assets.core.partitions import daily_partitions
from esg_assets.defs.daily_ratings.fetch_shard import fetch_shard
from esg_assets.defs.daily_ratings.merge_shards import FAILURE_RATE_OUTPUT, merge_shards
from esg_assets.defs.daily_ratings.plan_shards import EsgRatingsConfig, plan_shards
from esg_assets.defs.quality.check_results import failure_rate_spec


def _plan_config(config: dict) -> dict:
    """The asset's configuration (Launchpad, esg-report rerun) is its planning step's."""
    return {"plan_shards": {"config": config}}


@graph_asset(
    key=ESG_RATINGS,
    partitions_def=daily_partitions,
    ins={"active_accounts": AssetIn(key=ACTIVE_ACCOUNTS, dagster_type=Nothing)},
    group_name=DAILY_GROUP,
    kinds={"duckdb"},
    check_specs=[failure_rate_spec],
    config=ConfigMapping(config_fn=_plan_config, config_schema=EsgRatingsConfig.to_config_schema()),
    description="One row per active account with its six ESG values, analysis date, Processing Status, error "
    "reason, attempts, HTTP status, ETag and fetch time. Table esg_ratings. Fetched in ESG_SHARDS shards, a "
    "step each, then merged. Resumes: accounts that already have a final result for the day are not fetched "
    "again.",
)
def esg_ratings(active_accounts):
    plan, shards = plan_shards(active_accounts)
    result, failure_rate = merge_shards(plan, shards.map(fetch_shard).collect())
    return {"result": result, FAILURE_RATE_OUTPUT: failure_rate}
