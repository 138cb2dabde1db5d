"""The real run-monitoring path: dagster-daemon terminates a run past its dagster/max_runtime, and the alert
arrives; the deadline sensor terminates a run that is really running.

One daemon (a subprocess on a temporary DAGSTER_HOME) serves both tests of the module. Every wait polls the
instance against a deadline; nothing is asserted about how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    build_run_status_sensor_context,
)

from esg_assets.defs.alerting.job_day import central_day, deadline_of, utc_now
from esg_assets.defs.alerting.run_endings import DEADLINE_TERMINATION, TERMINATED_BY_TAG
from esg_assets.defs.alerting.sensors.deadline import enforce_deadline
from esg_assets.defs.alerting.sensors.run_canceled import esg_run_canceled_alert
from esg_assets.defs.alerting.sensors.run_failure import esg_run_failure_alert
from esg_assets_tests.support.alert_loopback import BUSINESS, DEV, ledger_from_env, sensor_resources
from esg_assets_tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
WAIT_SECONDS = 120  # an upper bound for a slow machine, never a measure of speed

DAGSTER_YAML = """
run_monitoring:
  enabled: true
  poll_interval_seconds: 1
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""

WORKSPACE_YAML = f"""
load_from:
  - python_module:
      module_name: esg_assets_tests.support.monitored_location
      working_directory: {REPO_ROOT}
      location_name: monitored
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """``dagster-daemon run`` on a fresh DAGSTER_HOME; yields (home, workspace file, environment)."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML)
    environment = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    # The storages' SQLite schemas are made here, before the daemon starts: two processes creating them at
    # once race ("table instigators already exists").
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_run_records(limit=1)
        instance.all_instigator_state()
        instance.get_latest_materialization_event(AssetKey("esg_ratings"))
    log = (home / "daemon.log").open("wb")
    # Its own session, so the code server and run workers it starts are stopped with it.
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home, workspace, environment
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def instance(daemon, monkeypatch):
    home, _, _ = daemon
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        yield instance


def launch(daemon, tags: dict[str, str]) -> str:
    """Queues a run of the test location's esg_daily_job, as the schedule would; returns its id."""
    home, workspace, environment = daemon
    with DagsterInstance.from_config(str(home)) as instance:
        before = {record.dagster_run.run_id for record in instance.get_run_records()}
    command = ["job", "launch", "-w", str(workspace), "-j", "esg_daily_job", "--tags", json.dumps(tags)]
    subprocess.run(
        [str(BIN / "dagster"), *command],
        env=environment,
        check=True,
        capture_output=True,
        timeout=WAIT_SECONDS,
    )
    with DagsterInstance.from_config(str(home)) as instance:
        [run_id] = {record.dagster_run.run_id for record in instance.get_run_records()} - before
    return run_id


def wait_for_status(instance: DagsterInstance, run_id: str, statuses: set[DagsterRunStatus], home: Path):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status in statuses:
            return run
        time.sleep(0.5)
    log = (home / "daemon.log").read_text(errors="replace")[-3000:]
    pytest.fail(f"run {run_id} still {instance.get_run_by_id(run_id).status} after {WAIT_SECONDS} s\n{log}")


def hear(instance: DagsterInstance, run) -> None:
    """Evaluates the sensor that hears the run's ending (failure or cancellation), as the daemon would."""
    ending = {
        DagsterRunStatus.FAILURE: (DagsterEventType.RUN_FAILURE, esg_run_failure_alert),
        DagsterRunStatus.CANCELED: (DagsterEventType.RUN_CANCELED, esg_run_canceled_alert),
    }
    event_type, sensor = ending[run.status]
    [event] = [e.dagster_event for e in instance.all_logs(run.run_id, of_type=event_type)][-1:]
    with build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources=sensor_resources(),
    ) as context:
        sensor(context.for_run_failure() if run.status == DagsterRunStatus.FAILURE else context)


def test_run_monitoring_terminates_a_run_past_its_max_runtime_and_the_alert_arrives(
    daemon, instance, alert_servers
):
    home, _, _ = daemon
    run_id = launch(daemon, {"dagster/partition": "2026-11-20"})

    run = wait_for_status(instance, run_id, {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}, home)
    messages = [entry.message for entry in instance.all_logs(run_id)]
    assert any("Exceeded maximum runtime of 3 seconds" in message for message in messages)
    hear(instance, run)
    hear(instance, run)

    [event] = alert_servers.triggers("esg-2026-11-20-max_runtime")
    assert event["payload"]["custom_details"]["max_runtime_seconds"] == "3"
    assert event["payload"]["severity"] == "critical"
    [mail] = alert_servers.mails("esg-2026-11-20-max_runtime")
    assert sorted(mail.recipients) == sorted([DEV, BUSINESS])
    assert alert_servers.triggers("esg-2026-11-20-run_failure") == []  # one alert for one cause


def test_the_deadline_terminates_the_days_running_run(daemon, instance, alert_servers):
    home, _, _ = daemon
    day = central_day(utc_now()) + timedelta(days=2)  # its 09:00 is ahead of the wall clock
    run_id = launch(daemon, {"dagster/partition": day.isoformat(), "dagster/max_runtime": "600"})
    wait_for_status(instance, run_id, {DagsterRunStatus.STARTED}, home)

    enforce_deadline(instance, ledger_from_env(instance), deadline_of(day) + timedelta(seconds=30))

    run = wait_for_status(instance, run_id, {DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE}, home)
    assert run.status == DagsterRunStatus.CANCELED and run.tags[TERMINATED_BY_TAG] == DEADLINE_TERMINATION
    hear(instance, run)  # the canceled-run sensor recognises the deadline: no second alert
    [event] = alert_servers.triggers(f"esg-{day.isoformat()}-deadline")
    assert event["payload"]["custom_details"]["status_at_deadline"] == "STARTED"
