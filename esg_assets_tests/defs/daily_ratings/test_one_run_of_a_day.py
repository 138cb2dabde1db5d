"""One run of a day at a time: a second run of a day being run fails at once naming the first, writes nothing,
and a run killed with -9 does not block its day."""

import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.keys import PARTITION_TAG
from esg_assets.defs.alerting.run_endings import alert_on_run_ending
from esg_assets.defs.daily_ratings.daily_runs import FINISHED
from esg_assets.defs.daily_ratings.day_run_lock import (
    LAUNCHED_BY_TAG,
    REFUSED_TAG,
    DayAlreadyRunningError,
    day_lock_path,
    hold_day,
    launched_by,
)
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.verification import committed_manifest, verify_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.alert_loopback import ledger_from_env
from esg_assets_tests.support.dagster_processes import running_daemon
from esg_assets_tests.support.materialize_processes import (
    events_of,
    launch_through_queue,
    project_home,
    runs_of_day,
    start_materialize,
)
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY, decrypted_file, parsed, run_day
from esg_assets_tests.support.warehouses import warehouse_at

WAIT_SECONDS = 300  # an upper bound for a busy machine, never a measure of speed
WROTE_SOMETHING = (
    DagsterEventType.STEP_START,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
)


def _run(run_id: str, **tags: str) -> DagsterRun:
    return DagsterRun(job_name="esg_daily_job", run_id=run_id, tags={PARTITION_TAG: DAY.isoformat(), **tags})


def _every_file(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the JSON logs (the refused run logs its refusal), by relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "log" not in path.relative_to(root).parts
    }


def _warehouse_runs(tmp_path: Path, table: str) -> set[str]:
    with warehouse_at(tmp_path / "warehouse.duckdb").connect(read_only=True) as connection:
        rows = connection.execute(f"SELECT DISTINCT run_id FROM {table} WHERE partition_date = ?", [DAY])
        return {run_id for (run_id,) in rows.fetchall()}


# --- how a run names the one in its way (unit) --------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("tags", "argv", "expected"),
    [
        ({"dagster/schedule_name": "esg_daily_schedule"}, [], "schedule esg_daily_schedule"),
        ({"dagster/backfill": "abcdefgh"}, [], "backfill abcdefgh"),
        ({LAUNCHED_BY_TAG: "esg-report rerun"}, ["/bin/esg-report", "rerun"], "esg-report rerun"),
        ({}, ["/bin/dagster", "asset", "materialize", "--select", "*"], "dagster asset materialize"),
        ({}, ["/x/site-packages/dagster/__main__.py", "asset", "materialize"], "dagster asset materialize"),
        # Arguments never make it into the message (they may be account ids).
        ({}, ["/bin/esg-report", "--date", "ACC-0000007"], "esg-report"),
    ],
)
def test_a_run_says_how_it_was_launched(tags, argv, expected):
    assert launched_by(_run("r", **tags), argv) == expected


@pytest.mark.unit
def test_the_second_holder_of_a_day_is_refused_naming_the_first_and_the_lock_is_free_after(tmp_path):
    log = logging.getLogger("test")
    with DagsterInstance.ephemeral() as instance:
        first = _run("first-run", **{"dagster/schedule_name": "esg_daily_schedule"})
        with hold_day(tmp_path, DAY.isoformat(), first, instance, log):
            with pytest.raises(DayAlreadyRunningError) as refused:
                with hold_day(tmp_path, DAY.isoformat(), _run("second-run"), instance, log):
                    pytest.fail("two runs of one day held it at once")
            # Another day is not held by it (a backfill runs different days).
            with hold_day(tmp_path, "2026-11-21", _run("other-day"), instance, log):
                pass
        with hold_day(tmp_path, DAY.isoformat(), _run("third-run"), instance, log):
            pass
    message = str(refused.value)
    assert "another run of 2026-11-20 is running: run first-run (schedule esg_daily_schedule)" in message
    assert f"running since {time.gmtime().tm_year}-" in message and f"(process {os.getpid()})" in message
    assert "This run (second-run) stopped before writing anything" in message
    assert oct(day_lock_path(tmp_path, DAY.isoformat()).stat().st_mode & 0o777) == "0o600"


@pytest.mark.unit
def test_a_step_in_a_process_of_its_own_goes_on_under_its_run_workers_lock_and_another_runs_step_does_not(
    tmp_path, caplog
):
    """With a process per step (ESG_SHARDS > 1), the run worker holds the day (day_locked_executor.py) and
    each step's day_run_lock sees its own run's record; a step of another run of the day is refused."""
    log = logging.getLogger("test")
    with DagsterInstance.ephemeral() as instance:
        worker = _run("sharded-run")
        with hold_day(tmp_path, DAY.isoformat(), worker, instance, log):  # the run worker
            with caplog.at_level(logging.INFO, logger="test"):
                with hold_day(tmp_path, DAY.isoformat(), _run("sharded-run"), instance, log):  # its step
                    pass
            with pytest.raises(DayAlreadyRunningError, match="run sharded-run"):
                with hold_day(tmp_path, DAY.isoformat(), _run("other-run"), instance, log):
                    pytest.fail("a step of another run went on while the day was held")
        # The worker's end frees the day: a step that outlived it would take the lock itself.
        with hold_day(tmp_path, DAY.isoformat(), _run("other-run"), instance, log):
            pass
    assert "the worker of this run holds 2026-11-20" in caplog.text


# --- a run refused writes nothing (integration) -------------------------------------------------------------


@pytest.mark.integration
def test_a_run_refused_because_its_day_is_held_touches_no_byte_of_the_day_and_pages_nobody(
    job_environment, alert_servers, tmp_path
):
    with SandboxServer(SandboxConfig(accounts=40, seed=31, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        served = sandbox.stats()["esg"]["requests"]
        holder = _run("running-run", **{LAUNCHED_BY_TAG: "dagster asset materialize"})
        with DagsterInstance.ephemeral() as instance:
            with hold_day(tmp_path, DAY.isoformat(), holder, instance, logging.getLogger("test")):
                before = _every_file(tmp_path)
                result = materialize(
                    ALL_ASSETS,
                    partition_key=DAY.isoformat(),
                    resources=dagster_resources(),
                    instance=instance,
                    raise_on_error=False,
                )
                refused = instance.all_logs(result.run_id, of_type=set(WROTE_SOMETHING))
                # What esg_run_failure_alert does with it: the day is carried by the holder, not failed.
                alert_on_run_ending(
                    instance, ledger_from_env(instance), result.run_id, logging.getLogger("test")
                )
                assert instance.get_run_by_id(result.run_id).tags[REFUSED_TAG].startswith("run running-run")
        assert sandbox.stats()["esg"]["requests"] == served  # not one request either
    assert not result.success
    assert refused == []
    (failure,) = [event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"]
    error = failure.event_specific_data.error
    assert "another run of 2026-11-20 is running: run running-run (dagster asset materialize)" in str(error)
    assert _every_file(tmp_path) == before  # the warehouse, the published set, the audit log: byte for byte
    assert alert_servers.triggers() == [] and alert_servers.mails() == []
    store = LocalReportStore(paths["output"])
    assert verify_day(store, key_file_keyring(load_key_ring(paths["key_file"])), DAY).problems == []


# --- two `dagster asset materialize` of one day started together (e2e) -------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("shards", ["1", "2"])
def test_two_materializations_of_one_day_started_together_one_runs_the_other_fails_naming_it(
    job_environment, tmp_path, shards
):
    # With ESG_SHARDS=2 each step runs in a process of its own and the run worker takes the day's lock
    # (day_locked_executor.py) before any step starts: the refused run must fail there just the same.
    config = SandboxConfig(accounts=300, seed=32, latency_ms=20, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(
            sandbox, ESG_RATE_LIMIT_PER_SECOND="40", ESG_MAX_IN_FLIGHT="4", ESG_SHARDS=shards
        )
        home = project_home(tmp_path / "dagster_home")
        runs = [start_materialize(home, DAY, tmp_path / f"materialize-{n}.txt") for n in (1, 2)]
        ended = []  # in the order they ended
        deadline = time.monotonic() + WAIT_SECONDS
        while len(ended) < 2 and time.monotonic() < deadline:
            ended += [run for run in runs if run not in ended and run.process.poll() is not None]
            time.sleep(0.05)
        for run in runs:
            if run.process.poll() is None:
                os.killpg(run.process.pid, signal.SIGKILL)
        expected = sandbox.data.expected_active_accounts()
    assert len(ended) == 2, "a materialization did not end"
    # Fails at once: the refused one ended first, while the other still ran (nothing is timed).
    refused, winner = ended
    assert winner.process.returncode == 0, winner.text()[-3000:]
    assert refused.process.returncode != 0
    day_runs = runs_of_day(home, DAY)
    assert len(day_runs) == 2
    (first,) = [run for run in day_runs if run.status == DagsterRunStatus.SUCCESS]
    (second,) = [run for run in day_runs if run.status == DagsterRunStatus.FAILURE]
    text = refused.text()
    assert f"another run of {DAY} is running: run {first.run_id} (dagster asset materialize)" in text
    assert f"This run ({second.run_id}) stopped before writing anything" in text
    assert events_of(home, second.run_id, *WROTE_SOMETHING) == []
    assert second.tags[REFUSED_TAG].startswith(f"run {first.run_id} (dagster asset materialize)")
    # Everything of the day is the first run's: the published set (which verifies), the warehouse rows.
    keyring = key_file_keyring(load_key_ring(paths["key_file"]))
    store = LocalReportStore(paths["output"])
    assert committed_manifest(store, keyring, DAY).run_id == first.run_id
    assert verify_day(store, keyring, DAY).problems == []
    assert [row[0] for row in parsed(decrypted_file(paths))] == [account_id for account_id, _ in expected]
    for table in ("esg_ratings", "ratings_fetch_runs", "run_history"):
        assert _warehouse_runs(tmp_path, table) <= {first.run_id}, table
    audit = [json.loads(line) for line in (paths["audit"] / "audit.jsonl").read_text().splitlines()]
    assert {record["run_id"] for record in audit if "run_id" in record} == {first.run_id}


# --- a run killed with -9 does not block its day (e2e) ------------------------------------------------------


@pytest.mark.e2e
def test_a_run_killed_with_minus_9_does_not_block_the_next_run_of_its_day(job_environment, tmp_path):
    config = SandboxConfig(accounts=400, seed=33, latency_ms=20, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_RATE_LIMIT_PER_SECOND="40", ESG_MAX_IN_FLIGHT="4")
        home = project_home(tmp_path / "dagster_home")
        killed = start_materialize(home, DAY, tmp_path / "killed.txt")
        deadline = time.monotonic() + WAIT_SECONDS
        while sandbox.stats()["esg"]["requests"] < 50 and time.monotonic() < deadline:
            assert killed.process.poll() is None, killed.text()[-3000:]
            time.sleep(0.05)
        os.killpg(killed.process.pid, signal.SIGKILL)  # kill -9: no clean-up of any kind
        killed.process.wait()
        (dead,) = runs_of_day(home, DAY)
        assert dead.status == DagsterRunStatus.STARTED  # the record says it is still running

        next_run = start_materialize(home, DAY, tmp_path / "next.txt")
        assert next_run.process.wait(timeout=WAIT_SECONDS) == 0, next_run.text()[-3000:]
    dead_now, finished = runs_of_day(home, DAY)
    assert finished.status == DagsterRunStatus.SUCCESS
    # The dead run no longer counts as running, and the run that found it says so.
    assert dead_now.run_id == dead.run_id and dead_now.status == DagsterRunStatus.FAILURE
    (failure,) = events_of(home, dead.run_id, DagsterEventType.RUN_FAILURE)
    assert f"its process {killed.process.pid} is gone" in failure.dagster_event.message
    assert f"marked failed by run {finished.run_id}" in failure.dagster_event.message
    assert f"run {dead.run_id} of {DAY} ended without a word" in next_run.text()
    keyring = key_file_keyring(load_key_ring(paths["key_file"]))
    store = LocalReportStore(paths["output"])
    assert committed_manifest(store, keyring, DAY).run_id == finished.run_id
    assert verify_day(store, keyring, DAY).problems == []


# --- through the run queue, a run of a day being run waits instead of failing (e2e) -------------------------


@pytest.mark.e2e
def test_a_run_of_a_day_launched_through_the_queue_waits_for_the_one_running(job_environment, tmp_path):
    # Slow enough (600 accounts at 15/s) that the in-process run is still going when the launch returns.
    config = SandboxConfig(accounts=600, seed=34, latency_ms=20, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_RATE_LIMIT_PER_SECOND="15", ESG_MAX_IN_FLIGHT="4")
        # The project's dagster.yaml with room for more runs at once: only the per-day limit holds it back.
        home = project_home(tmp_path / "dagster_home", max_concurrent_runs=4)
        with running_daemon(home):
            running = start_materialize(home, DAY, tmp_path / "in-process.txt")
            deadline = time.monotonic() + WAIT_SECONDS
            while sandbox.stats()["esg"]["requests"] < 20 and time.monotonic() < deadline:
                assert running.process.poll() is None, running.text()[-3000:]
                time.sleep(0.05)
            (in_process,) = runs_of_day(home, DAY)
            launch = launch_through_queue(home, DAY)
            assert launch.returncode == 0, launch.stdout + launch.stderr
            assert running.process.poll() is None, "the in-process run ended before the launch: slow it down"
            statuses_while_running = set()  # of the queued run, while the in-process one is recorded running
            while time.monotonic() < deadline:
                first, queued = runs_of_day(home, DAY)  # oldest first
                if first.status in FINISHED and queued.status in FINISHED:
                    break
                if first.status not in FINISHED:
                    statuses_while_running.add(queued.status)
                time.sleep(0.2)
            assert running.process.wait(timeout=WAIT_SECONDS) == 0, running.text()[-3000:]
    assert first.run_id == in_process.run_id and first.status == DagsterRunStatus.SUCCESS
    assert statuses_while_running == {DagsterRunStatus.QUEUED}
    assert queued.status == DagsterRunStatus.SUCCESS, home.log("daemon.log")
    assert queued.tags[LAUNCHED_BY_TAG] == "dagster job launch"
    keyring = key_file_keyring(load_key_ring(paths["key_file"]))
    store = LocalReportStore(paths["output"])
    assert committed_manifest(store, keyring, DAY).run_id == queued.run_id
    assert verify_day(store, keyring, DAY).problems == []
