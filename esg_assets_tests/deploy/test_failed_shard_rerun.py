"""docs/scaling.md, "A failed shard": Dagster's re-execution from failure runs only the failed shard's step
and the steps after it, the shards that succeeded are not run again, and the re-run holds the day's lock like
any run.

On the stand-in of the fan-out (support/sharded_stand_in.py) with a process per step, day-locked, as every
deployment's executor is: the executor differs between targets, the re-execution and the lock do not.
"""

from __future__ import annotations

import json
import os

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ReexecutionOptions,
    execute_job,
    instance_for_test,
    reconstructable,
)

from esg_assets.core.keys import PARTITION_TAG
from esg_assets.defs.daily_ratings.day_run_lock import day_lock_path
from esg_assets_tests.support.sharded_stand_in import sharded_stand_in

pytestmark = pytest.mark.integration

DAY = "2026-11-24"
FAILED = 1  # the second of three shards


def started_steps(instance: DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
    return {record.event_log_entry.dagster_event.step_key for record in records}


def test_re_execution_from_failure_runs_only_the_failed_shard_and_the_merge(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(warehouse))
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "fail").touch()
    run_config = {"ops": {"fetch_shard": {"config": {"folder": str(shards), "fail_shard": FAILED}}}}
    job = reconstructable(sharded_stand_in)
    (tmp_path / "home").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with execute_job(job, instance, run_config=run_config, tags={PARTITION_TAG: DAY}) as first:
            assert not first.success
        assert started_steps(instance, first.run_id) == {
            "plan_shards",
            "fetch_shard[shard_1_of_3]",
            "fetch_shard[shard_2_of_3]",
            "fetch_shard[shard_3_of_3]",
        }
        assert sorted(path.name for path in shards.glob("ran-*")) == ["ran-0", "ran-2"]

        (shards / "fail").unlink()
        options = ReexecutionOptions.from_failure(first.run_id, instance)
        # The UI's "Re-execute from failure" keeps the parent's tags (the partition among them); execute_job
        # takes them as given.
        with execute_job(job, instance, reexecution_options=options, tags={PARTITION_TAG: DAY}) as rerun:
            assert rerun.success
            assert rerun.output_for_node("merge_shards") == 3  # the two kept shards' outputs, read again
        assert started_steps(instance, rerun.run_id) == {"fetch_shard[shard_2_of_3]", "merge_shards"}
        assert [(shards / f"ran-{index}").read_text().count("ran") for index in range(3)] == [1, 1, 1]

        # A run of the same day: the run worker held the day's lock, its steps found their run holding it.
        assert instance.get_run_by_id(rerun.run_id).tags[PARTITION_TAG] == DAY
        record = json.loads(day_lock_path(warehouse.parent, DAY).read_text())
        assert record["run_id"] == rerun.run_id
        assert record["pid"] == os.getpid()  # the run worker (execute_job runs it here), not a step's process
