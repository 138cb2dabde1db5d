"""The executor of the code location's jobs, from ESG_SHARDS: one process, or a process per step."""

from __future__ import annotations

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from esg_assets.config.environment import now
from esg_assets.core import settings as s
from esg_assets.core.setting_values import whole_number
from esg_assets.defs.daily_ratings.day_locked_executor import day_locked
from esg_assets.defs.daily_ratings.ratings_shards import MAX_SHARDS


def shards_setting() -> int:
    """ESG_SHARDS, checked."""
    return whole_number(s.SHARDS, now(s.SHARDS), high=MAX_SHARDS)


def warehouse_path() -> str:
    return now(s.WAREHOUSE_PATH)


def daily_executor(shards: int | None = None) -> ExecutorDefinition:
    """One shard: every step in the run's process (DuckDB allows one writer per file, and a process per step
    costs seconds of start-up for nothing). More: a process per step, every shard at once, the run worker
    holding the day's lock (docs/scaling.md)."""
    shards = shards_setting() if shards is None else shards
    if shards == 1:
        return in_process_executor
    return step_per_process(multiprocess_executor.configured({"max_concurrent": shards}))


def step_per_process(inner: ExecutorDefinition) -> ExecutorDefinition:
    """``inner``, an executor that runs each step in a process (or pod, or container) of its own, with the
    run worker holding the day's lock beside ESG_WAREHOUSE_PATH, read where the run starts."""
    return day_locked(inner, warehouse_path)
