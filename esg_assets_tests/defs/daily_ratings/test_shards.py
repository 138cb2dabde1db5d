"""esg_ratings in shards, a process per step: the same file as one shard, and a killed shard resumed alone."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.warehouse.encrypted import remove_database
from esg_assets.lib.warehouse.ratings import plan_fetch
from esg_assets.lib.warehouse.shard_stores import (
    stage_shard_stores,
    store_path,
    stores_progress,
    write_shard_results,
)
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.lib.warehouse.test_warehouse import success
from esg_assets_tests.support.materialize_processes import (
    events_of,
    project_home,
    runs_of_day,
    start_materialize,
)
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY, decrypted_file, parsed, run_day
from esg_assets_tests.support.warehouses import snapshot, warehouse_at

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 240
SHARD_STEPS = ("esg_ratings.fetch_shard[shard_1_of_2]", "esg_ratings.fetch_shard[shard_2_of_2]")


def step_processes(home, run_id: str) -> dict[str, int]:
    """Each started step of the run and the process it ran in."""
    return {
        entry.step_key: entry.dagster_event.pid
        for entry in events_of(home, run_id, DagsterEventType.STEP_START)
    }


def test_two_shards_in_processes_of_their_own_publish_the_file_of_one_shard(
    job_environment, tmp_path, monkeypatch
):
    config = SandboxConfig(
        accounts=300,
        seed=41,
        rate_limit=50,
        max_in_flight=16,
        partial_rate=0.1,
        failure_rate=0.02,
        transient_error_rate=0.05,
        ams_noise=False,
    )
    with SandboxServer(config) as sandbox:
        one = job_environment(sandbox)
        run_day()  # ESG_SHARDS unset: one shard, every step in this process
        one_shard = decrypted_file(one)

        # A second install of the job (its own warehouse, key and output) fetching the same day in two shards.
        two = {"output": tmp_path / "two" / "reports", "key_file": one["key_file"]}
        monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{two['output']}")
        monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "two" / "warehouse.duckdb"))
        monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "two" / "audit"))
        monkeypatch.setenv("ESG_SHARDS", "2")
        home = project_home(tmp_path / "dagster_home")
        run = start_materialize(home, DAY, tmp_path / "two-shards.txt")
        assert run.process.wait(timeout=WAIT_SECONDS) == 0, run.text()[-3000:]
        limited = sandbox.stats()["esg"]["limited"]  # 429s of its rate or in-flight limit

    assert decrypted_file(two) == one_shard
    assert len(parsed(one_shard)) == 300
    (day_run,) = runs_of_day(home, DAY)
    processes = step_processes(home, day_run.run_id)
    assert set(SHARD_STEPS) <= set(processes)
    # A process per step, none of them the run worker (the command), which held the day's lock meanwhile.
    assert len(set(processes.values())) == len(processes)
    assert run.process.pid not in processes.values()
    assert "this run holds 2026-11-20" in run.text()
    assert limited == 0  # two shards with half the rate each stay under the API's limit
    assert not list((tmp_path / "two" / "shards").iterdir())  # every store folded in and removed


def test_a_shard_killed_mid_run_is_the_only_one_fetched_again_when_the_day_runs_again(
    job_environment, tmp_path
):
    config = SandboxConfig(accounts=600, seed=42, latency_ms=20, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(
            sandbox, ESG_RATE_LIMIT_PER_SECOND="60", ESG_MAX_IN_FLIGHT="4", ESG_SHARDS="2"
        )
        home = project_home(tmp_path / "dagster_home")
        first = start_materialize(home, DAY, tmp_path / "first.txt")
        deadline = time.monotonic() + WAIT_SECONDS
        shard_pid = None
        while shard_pid is None and time.monotonic() < deadline:
            assert first.process.poll() is None, first.text()[-3000:]
            runs = runs_of_day(home, DAY)
            shard_pid = step_processes(home, runs[0].run_id).get(SHARD_STEPS[0]) if runs else None
            time.sleep(0.2)
        # Both shards fetch, 30 a second each: kill shard 1's process once it has committed some results.
        while sandbox.stats()["esg"]["requests"] < 240 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(shard_pid, signal.SIGKILL)  # kill -9: no clean-up of any kind
        assert first.process.wait(timeout=WAIT_SECONDS) != 0
        while sandbox.stats()["esg"]["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)

        keyring = key_file_keyring(load_key_ring(paths["key_file"]))
        warehouse = tmp_path / "warehouse.duckdb"
        killed, finished = stores_progress(warehouse, DAY, keyring)
        assert killed.path.name.endswith("shard-1-of-2.duckdb")
        assert finished.final == finished.tasks == finished.results  # shard 2 ran to its end
        assert 0 < killed.final < killed.tasks  # shard 1 committed part of its accounts
        served_before = sandbox.stats()["esg"]["requests"]

        second = start_materialize(home, DAY, tmp_path / "second.txt")
        assert second.process.wait(timeout=WAIT_SECONDS) == 0, second.text()[-3000:]
        fetched_again = sandbox.stats()["esg"]["requests"] - served_before
        expected = sandbox.data.expected_active_accounts()

    # Only shard 1's accounts without a committed result were asked for (plus the reconciliation sample).
    assert fetched_again == killed.tasks - killed.final + 20
    assert f"kept {killed.results + finished.results} results of an earlier run" in second.text()
    assert [row[0] for row in parsed(decrypted_file(paths))] == [account_id for account_id, _ in expected]
    assert stores_progress(warehouse, DAY, keyring) == []


def test_a_full_refresh_and_a_rerun_of_two_accounts_with_two_shards_are_those_of_one_shard(
    job_environment, tmp_path, monkeypatch
):
    # What the README's "Running a day by hand" does, with ESG_SHARDS=2: the full refresh through
    # `dagster asset materialize --config-json` (a process per step), the re-run through `esg-report rerun`.
    config = SandboxConfig(accounts=200, seed=43, partial_rate=0.1, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_SHARDS="2")
        run_day()
        first = decrypted_file(paths)
        before = dict(sandbox.stats()["esg"]["by_status"])
        home = project_home(tmp_path / "dagster_home")
        refresh = start_materialize(
            home,
            DAY,
            tmp_path / "refresh.txt",
            select="esg_ratings*",
            config_json='{"ops": {"esg_ratings": {"config": {"full_refresh": true}}}}',
        )
        assert refresh.process.wait(timeout=WAIT_SECONDS) == 0, refresh.text()[-3000:]
        after = dict(sandbox.stats()["esg"]["by_status"])
    (refresh_run,) = runs_of_day(home, DAY)
    assert set(SHARD_STEPS) <= set(step_processes(home, refresh_run.run_id))
    # Every account asked again once, conditionally, in one shard or the other: 304s (and reconciliation's).
    assert after["304"] - before.get("304", 0) == 200
    assert after.get("200", 0) - before.get("200", 0) <= 20
    assert decrypted_file(paths) == first

    # The same accounts, rated differently by another sandbox: only re-run accounts can pick that up.
    with SandboxServer(SandboxConfig(accounts=200, seed=44, ams_noise=False)) as other:
        for name, value in other.job_environment().items():
            monkeypatch.setenv(name, value)
        rerun = subprocess.run(
            [str(Path(sys.executable).parent / "esg-report"), "rerun", "--date", DAY.isoformat(),
             "--accounts", "ACC-0000007,ACC-0000031,ACC-0000118"],
            capture_output=True, text=True, timeout=WAIT_SECONDS, check=False,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert other.stats()["esg"]["by_status"].get("200", 0) <= 3 + 20  # the three, plus reconciliation
    changed = [b[0] for b, a in zip(parsed(first), parsed(decrypted_file(paths)), strict=True) if b != a]
    assert changed == ["ACC-0000007", "ACC-0000031", "ACC-0000118"]
    assert not list((tmp_path / "shards").iterdir())  # every store folded in and removed


def test_a_store_of_another_day_under_this_days_name_stops_the_run_and_the_runbook_fix_works(
    job_environment, tmp_path
):
    # An insider (or a bad restore) puts the next day's leftover store, with its key, under this day's name.
    next_day = DAY + timedelta(days=1)
    with SandboxServer(SandboxConfig(accounts=40, seed=45, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox, ESG_SHARDS="2")
        warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
        database = Path(warehouse.path)
        ids = [f"ACC-{n:07d}" for n in range(1, 41)]
        with warehouse.connect() as connection:
            snapshot(connection, next_day, ids)
            plan_fetch(connection, next_day)
            stage_shard_stores(connection, database, next_day, 2, warehouse.keyring())
        with warehouse.connect_shard_store(store_path(database, next_day, 0, 2)) as store:
            write_shard_results(store, next_day, "run-x", [success(i, "99.00", '"x"') for i in ids])
        swapped = store_path(database, DAY, 0, 2)
        for suffix in ("", ".key"):
            Path(f"{store_path(database, next_day, 0, 2)}{suffix}").rename(f"{swapped}{suffix}")
        remove_database(store_path(database, next_day, 1, 2))

        with DagsterInstance.ephemeral() as instance:
            refused = materialize(
                ALL_ASSETS,
                partition_key=DAY.isoformat(),
                resources=dagster_resources(),
                instance=instance,
                raise_on_error=False,
            )
        assert not refused.success
        assert sandbox.stats()["esg"]["requests"] == 0  # stopped at plan_shards, before any fetch
        (failure,) = [event for event in refused.all_events if event.is_step_failure]
        assert failure.step_key == "esg_ratings.plan_shards"
        message = failure.step_failure_data.user_failure_data.description
        assert f"the shard store {swapped} cannot be folded into {DAY}" in message
        assert "Nothing of it was folded" in message
        with warehouse.connect(read_only=True) as connection:
            assert connection.execute("SELECT count(*) FROM esg_ratings").fetchone() == (0,)
        assert swapped.exists()

        # The runbook's fix (run_failure, step 7): delete the store with its key, run the day again.
        remove_database(swapped)
        run_day()
        expected = sandbox.data.expected_active_accounts()
    rows = parsed(decrypted_file(paths))
    assert [row[0] for row in rows] == [account_id for account_id, _ in expected]
    with warehouse.connect(read_only=True) as connection:
        runs = connection.execute("SELECT DISTINCT run_id, partition_date FROM esg_ratings").fetchall()
    assert len(runs) == 1 and runs[0][0] != "run-x" and runs[0][1] == DAY  # nothing of the other day's store
