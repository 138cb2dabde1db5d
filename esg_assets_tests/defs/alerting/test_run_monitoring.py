"""The real run-monitoring path: dagster-daemon terminates a run past its dagster/max_runtime, and the alert
arrives; the deadline sensor terminates a run that is really running.

One daemon (the root conftest's ``dagster_daemon``: a subprocess on a temporary DAGSTER_HOME) serves both
tests of the module. Every wait polls the instance against a deadline; nothing is asserted about how long
anything took.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta

import pytest
from dagster import (
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
from esg_assets_tests.support.alert_loopback import (
    dev_and_business_mails,
    ledger_from_env,
    sensor_resources,
)
from esg_assets_tests.support.dagster_processes import BIN, DagsterHome

pytestmark = pytest.mark.integration

WAIT_SECONDS = 120  # an upper bound for a slow machine, never a measure of speed


@pytest.fixture
def instance(dagster_daemon, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_daemon.path))
    with DagsterInstance.get() as instance:
        yield instance


def launch(daemon: DagsterHome, tags: dict[str, str]) -> str:
    """Queues a run of the test location's esg_daily_job, as the schedule would; returns its id."""
    with DagsterInstance.from_config(str(daemon.path)) as instance:
        before = {record.dagster_run.run_id for record in instance.get_run_records()}
    command = ["job", "launch", "-w", str(daemon.workspace), "-j", "esg_daily_job"]
    subprocess.run(
        [str(BIN / "dagster"), *command, "--tags", json.dumps(tags)],
        env=daemon.environment,
        check=True,
        capture_output=True,
        timeout=WAIT_SECONDS,
    )
    with DagsterInstance.from_config(str(daemon.path)) as instance:
        [run_id] = {record.dagster_run.run_id for record in instance.get_run_records()} - before
    return run_id


def wait_for_status(
    instance: DagsterInstance, run_id: str, statuses: set[DagsterRunStatus], daemon: DagsterHome
):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status in statuses:
            return run
        time.sleep(0.5)
    status = instance.get_run_by_id(run_id).status
    pytest.fail(f"run {run_id} still {status} after {WAIT_SECONDS} s\n{daemon.log('daemon.log')}")


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
    dagster_daemon, instance, alert_servers
):
    daemon = dagster_daemon
    run_id = launch(daemon, {"dagster/partition": "2026-11-20"})

    run = wait_for_status(instance, run_id, {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}, daemon)
    messages = [entry.message for entry in instance.all_logs(run_id)]
    assert any("Exceeded maximum runtime of 3 seconds" in message for message in messages)
    hear(instance, run)
    hear(instance, run)

    [event] = alert_servers.triggers("esg-2026-11-20-max_runtime")
    assert event["payload"]["custom_details"]["max_runtime_seconds"] == "3"
    assert event["payload"]["severity"] == "critical"
    _, business = dev_and_business_mails(alert_servers, "esg-2026-11-20-max_runtime")
    assert "4-hour limit" in business.message.get_body(("plain",)).get_content()
    assert alert_servers.triggers("esg-2026-11-20-run_failure") == []  # one alert for one cause


def test_the_deadline_terminates_the_days_running_run(dagster_daemon, instance, alert_servers):
    daemon = dagster_daemon
    day = central_day(utc_now()) + timedelta(days=2)  # its 09:00 is ahead of the wall clock
    run_id = launch(daemon, {"dagster/partition": day.isoformat(), "dagster/max_runtime": "600"})
    wait_for_status(instance, run_id, {DagsterRunStatus.STARTED}, daemon)

    enforce_deadline(instance, ledger_from_env(instance), deadline_of(day) + timedelta(seconds=30))

    run = wait_for_status(instance, run_id, {DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE}, daemon)
    assert run.status == DagsterRunStatus.CANCELED and run.tags[TERMINATED_BY_TAG] == DEADLINE_TERMINATION
    hear(instance, run)  # the canceled-run sensor recognises the deadline: no second alert
    [event] = alert_servers.triggers(f"esg-{day.isoformat()}-deadline")
    assert event["payload"]["custom_details"]["status_at_deadline"] == "STARTED"
