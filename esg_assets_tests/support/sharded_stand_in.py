"""A stand-in of the daily job's fan-out (a plan, a step per shard, a merge) on a day-locked executor with a
process per step, for the tests of what a failed shard's re-run executes (esg_assets_tests/deploy/).

Module-level, so Dagster can load the job again in each step's process (``reconstructable``). Each shard step
takes the day's lock as the real steps do, and records that it ran; the shard named in ``fail_shard`` fails
while the file ``<folder>/fail`` exists.
"""

from pathlib import Path

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    EnvVar,
    job,
    multiprocess_executor,
    op,
)

from esg_assets.config.executor import step_per_process
from esg_assets.core.partitions import daily_partitions
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource

SHARDS = 3


class ShardConfig(Config):
    folder: str
    fail_shard: int


@op(out=DynamicOut(int))
def plan_shards():
    for index in range(SHARDS):
        yield DynamicOutput(index, mapping_key=f"shard_{index + 1}_of_{SHARDS}")


@op
def fetch_shard(config: ShardConfig, day_run_lock: DayRunLockResource, shard: int) -> int:
    folder = Path(config.folder)
    if shard == config.fail_shard and (folder / "fail").exists():
        raise RuntimeError(f"shard {shard} failed")
    (folder / f"ran-{shard}").open("a").write("ran\n")
    return shard


@op
def merge_shards(shards: list[int]) -> int:
    return len(shards)


@job(
    partitions_def=daily_partitions,
    executor_def=step_per_process(multiprocess_executor),
    resource_defs={"day_run_lock": DayRunLockResource(warehouse_path=EnvVar("ESG_WAREHOUSE_PATH"))},
)
def sharded_stand_in():
    merge_shards(plan_shards().map(fetch_shard).collect())
