"""The alerting sensors on real runs in a Dagster instance, delivering to loopback PagerDuty and SMTP.

Each plain sensor's logic takes the time as an argument, so "05:16 Central" or "09:01 Central" is a value in
the test, not a wait. Every alert is ticked more than once: it must reach each channel exactly once per day
and kind.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import date, timedelta, timezone

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    MaterializeResult,
    QueuedRunCoordinator,
    RunsFilter,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    materialize,
)
from dagster_graphql import DagsterGraphQLClient

from esg_assets.config.resources import dagster_resources
from esg_assets.core.file_names import ratings_file_name
from esg_assets.core.keys import RATINGS_FILE, RECONCILIATION_CHECK
from esg_assets.core.partitions import daily_partitions
from esg_assets.core.run_metadata import ReconciliationMetadata
from esg_assets.defs.alerting.alert_kinds import (
    ALERT_KINDS,
    DEADLINE,
    FAILURE_RATE,
    NOT_STARTED,
    RECONCILIATION,
    RUN_FAILURE,
)
from esg_assets.defs.alerting.alert_ledger import PENDING
from esg_assets.defs.alerting.dispatch import AlertNotDelivered
from esg_assets.defs.alerting.job_day import at_central, central_day, deadline_of, late_start_after, utc_now
from esg_assets.defs.alerting.run_endings import DEADLINE_TERMINATION, TERMINATED_BY_TAG
from esg_assets.defs.alerting.sensors import all_sensors
from esg_assets.defs.alerting.sensors.alert_retry import esg_alert_retry
from esg_assets.defs.alerting.sensors.deadline import enforce_deadline
from esg_assets.defs.alerting.sensors.failure_rate import alert_failed_checks, esg_failure_rate_alert
from esg_assets.defs.alerting.sensors.not_started import alert_if_not_started, esg_not_started_alert
from esg_assets.defs.alerting.sensors.reconciliation import (
    alert_failed_reconciliation,
    esg_reconciliation_alert,
)
from esg_assets.defs.alerting.sensors.resolve import resolve_recovered_days
from esg_assets.defs.alerting.sensors.run_canceled import esg_run_canceled_alert
from esg_assets.defs.alerting.sensors.run_failure import esg_run_failure_alert
from esg_assets.defs.daily_ratings.job import DAILY_JOB_NAME
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.alert_loopback import (
    DAGSTER_UI,
    DEV,
    ROUTING_KEY,
    SMTP_PASSWORD,
    assert_plain_for_the_business,
    dev_and_business_mails,
    ledger_from_env,
    plain_text,
    point_email_at_a_closed_port,
    sensor_resources,
    tick,
)
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, live_set
from esg_assets_tests.support.stand_in_assets import run_stand_in_day

DAY = date(2026, 11, 20)
PARTITION = DAY.isoformat()
MORNING = at_central(DAY, 10)  # after the deadline: every check of the day is due


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def key(kind: str, partition: str = PARTITION) -> str:
    return f"esg-{partition}-{kind}"


def hear_failure(instance: DagsterInstance, result) -> None:
    """One evaluation of the failed-run sensor on ``result``'s run, as the daemon would do it."""
    with build_run_status_sensor_context(
        sensor_name="esg_run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=sensor_resources(),
    ) as context:
        esg_run_failure_alert(context.for_run_failure())


def hear_cancellation(instance: DagsterInstance, run_id: str) -> None:
    run = instance.get_run_by_id(run_id)
    [canceled] = [
        entry.dagster_event
        for entry in instance.all_logs(run_id)
        if entry.dagster_event and entry.dagster_event.event_type == DagsterEventType.RUN_CANCELED
    ]
    with build_run_status_sensor_context(
        sensor_name="esg_run_canceled_alert",
        dagster_event=canceled,
        dagster_instance=instance,
        dagster_run=run,
        resources=sensor_resources(),
    ) as context:
        esg_run_canceled_alert(context)


def assert_no_secret_left_the_job(servers) -> None:
    sent = json.dumps(servers.pagerduty.state.accepted) + "".join(m.raw.decode() for m in servers.mails())
    assert SMTP_PASSWORD not in sent and "hunter2" not in sent
    assert [event["routing_key"] for event in servers.pagerduty.state.accepted] == [ROUTING_KEY] * len(
        servers.pagerduty.state.accepted
    )  # the key goes to PagerDuty itself, nowhere else


# --- run failure --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_crash_reaches_dev_with_its_error_and_run_link_and_the_business_in_plain_words_once(
    instance, alert_servers
):
    error = "ESG API unreachable: connection refused\n" + "\n".join(f"frame {n}" for n in range(40))
    result = run_stand_in_day(instance, PARTITION, error=error + "\nclient_secret=hunter2")
    assert not result.success

    for _ in range(3):  # the daemon may evaluate a run again (restart, cursor reset): still one alert
        hear_failure(instance, result)

    [event] = alert_servers.triggers(key("run_failure"))
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"] == (
        f"ESG ratings {PARTITION}: the run failed in step esg_ratings: "
        "RuntimeError: ESG API unreachable: connection refused"
    )
    details = payload["custom_details"]
    assert details["run_url"] == f"{DAGSTER_UI}/runs/{result.run_id}"
    assert details["runbook_step"] == RUN_FAILURE.runbook_step
    assert details["failed_steps"] == "esg_ratings"
    assert details["error"].splitlines()[:3] == [
        "RuntimeError: ESG API unreachable: connection refused",
        "frame 0",
        "frame 1",
    ]
    assert "more lines in the run's event log" in details["error"] and "frame 2" not in details["error"]

    mail, business = dev_and_business_mails(alert_servers, key("run_failure"))
    assert_plain_for_the_business(
        business, result.run_id
    )  # the business hears the file is late, in plain words
    assert "stopped on an error, so the file is late" in plain_text(business)
    body = plain_text(mail)
    assert f"{DAGSTER_UI}/runs/{result.run_id}" in body and RUN_FAILURE.runbook_step in body
    assert_no_secret_left_the_job(alert_servers)


@pytest.mark.integration
def test_a_run_that_is_not_a_day_of_the_graph_is_ignored(instance, alert_servers):
    from dagster import asset

    @asset
    def unrelated():
        raise RuntimeError("not ours")

    result = materialize([unrelated], instance=instance, raise_on_error=False)
    hear_failure(instance, result)
    assert alert_servers.pagerduty.state.accepted == [] and alert_servers.mails() == []


# --- failure rate -------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_more_than_5_percent_failed_pages_both_channels_once_and_the_file_is_published(
    instance, alert_servers, job_environment
):
    ledger = ledger_from_env(instance)
    with SandboxServer(SandboxConfig(accounts=40, seed=2, failure_rate=0.2, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        result = materialize(
            ALL_ASSETS, partition_key=PARTITION, resources=dagster_resources(), instance=instance
        )
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "failure_rate"]
    assert result.success and not check.passed  # the check fails the day, not the run
    assert live_set(paths["output"])[ratings_file_name(DAY)].exists()  # compliance still gets the file

    for _ in range(3):  # every tick looks again: the ledger sends the day's alert once
        alert_failed_checks(instance, ledger, MORNING)

    [event] = alert_servers.triggers(key("failure_rate"))
    details = event["payload"]["custom_details"]
    assert event["payload"]["severity"] == "error"
    assert details["failure_rate"] > 0.05 and details["threshold"] == 0.05
    assert details["accounts_failed"] == round(details["failure_rate"] * details["accounts_total"])
    assert details["run_url"] == f"{DAGSTER_UI}/runs/{result.run_id}"
    mail, business = dev_and_business_mails(alert_servers, key("failure_rate"))
    assert_plain_for_the_business(business, result.run_id)
    assert FAILURE_RATE.runbook_step in plain_text(mail)
    assert "Harbor" not in mail.raw.decode()  # numbers only, no account names


@pytest.mark.integration
def test_exactly_5_percent_failed_does_not_page(instance, alert_servers):
    run_stand_in_day(instance, PARTITION, failed=5)  # 5 of 100: at the limit, not above it
    alert_failed_checks(instance, ledger_from_env(instance), MORNING)
    assert alert_servers.pagerduty.state.accepted == [] and alert_servers.mails() == []


@pytest.mark.integration
def test_failure_rate_sensor_alerts_each_day_once_and_skips_old_history(instance, alert_servers):
    today = central_day(utc_now())
    yesterday = today - timedelta(days=1)
    run_stand_in_day(instance, (today - timedelta(days=30)).isoformat(), failed=50)  # before the lookback
    run_stand_in_day(instance, today.isoformat(), failed=50)

    assert "sent" in tick(esg_failure_rate_alert, instance=instance).skip_message
    # A day whose run finished after today's (a slow re-run of yesterday) is still found on the next tick.
    run_stand_in_day(instance, yesterday.isoformat(), failed=50)
    for _ in range(2):
        assert isinstance(tick(esg_failure_rate_alert, instance=instance), SkipReason)

    assert sorted(e["dedup_key"] for e in alert_servers.triggers()) == sorted(
        [key("failure_rate", today.isoformat()), key("failure_rate", yesterday.isoformat())]
    )


# --- not started --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_not_started_alerts_business_and_dev_once_after_05_15_central(instance, alert_servers):
    ledger = ledger_from_env(instance)
    assert "not due" in alert_if_not_started(instance, ledger, at_central(DAY, 5, 14))
    assert alert_servers.pagerduty.state.accepted == []

    for minute in (16, 17, 45):
        alert_if_not_started(instance, ledger, at_central(DAY, 5, minute))

    [event] = alert_servers.triggers(key("not_started"))
    assert event["payload"]["custom_details"]["grace_minutes"] == 15
    assert event["payload"]["custom_details"]["run_url"] is None  # no run to link
    mail, business = dev_and_business_mails(alert_servers, key("not_started"))
    assert_plain_for_the_business(business)
    assert NOT_STARTED.runbook_step in plain_text(mail)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("day", "utc_offset_hours"),
    [(date(2026, 3, 8), 5), (date(2026, 11, 1), 6)],  # the days Central time springs forward and falls back
)
def test_start_grace_and_deadline_are_central_wall_clock_times_on_dst_days(day, utc_offset_hours):
    assert late_start_after(day).astimezone(timezone.utc).hour == 5 + utc_offset_hours
    assert late_start_after(day).astimezone(timezone.utc).minute == 15
    assert deadline_of(day).astimezone(timezone.utc).hour == 9 + utc_offset_hours


@pytest.mark.integration
def test_a_day_with_a_run_that_started_is_not_reported_as_not_started(instance, alert_servers, monkeypatch):
    monkeypatch.setenv("ESG_START_GRACE_MINUTES", "30")
    ledger, window = ledger_from_env(instance), sensor_resources()["alerting"].window
    assert window.start_grace_minutes == 30
    assert "not due" in alert_if_not_started(instance, ledger, at_central(DAY, 5, 20), window)
    run_stand_in_day(instance, PARTITION, error="failed, but it started")
    assert "run(s) of the day started" in alert_if_not_started(instance, ledger, at_central(DAY, 6), window)
    assert alert_servers.triggers(key("not_started")) == []


@pytest.mark.integration
def test_not_started_sensor_runs_against_the_instance(instance, alert_servers):
    result = tick(esg_not_started_alert, instance=instance)
    assert isinstance(result, SkipReason) and central_day(utc_now()).isoformat() in result.skip_message


# --- deadline -----------------------------------------------------------------------------------------------


@pytest.fixture
def queued_instance(dagster_webserver, monkeypatch):
    """The instance of a real dagster-webserver with the production run queue (QueuedRunCoordinator), and
    no daemon to start its runs. The session's tests share it: each uses a day of its own."""
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_webserver.home.path))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        yield instance


@pytest.fixture
def queue_run(dagster_webserver, queued_instance):
    """Submits a run of the daily job (the ``monitored`` code location's) through the webserver's GraphQL API:
    it waits in the queue, as the schedule leaves it before the daemon starts it. Returns its id."""
    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_webserver.port)

    def submit(partition: str) -> str:
        run_id = client.submit_job_execution(
            DAILY_JOB_NAME,
            repository_location_name="monitored",
            repository_name="__repository__",
            tags={"dagster/partition": partition},
        )
        assert queued_instance.get_run_by_id(run_id).status == DagsterRunStatus.QUEUED
        return run_id

    return submit


@pytest.mark.integration
def test_a_day_whose_only_run_is_queued_alerts_not_started_naming_the_blocking_run(
    queued_instance, queue_run, alert_servers
):
    day = date(2026, 6, 1)  # a day of its own in the session's instance
    waiting = queue_run(day.isoformat())
    release = threading.Event()

    @asset(partitions_def=daily_partitions)
    def backfill_step() -> None:  # another day's work holding the one run slot
        release.wait(60)

    holder = threading.Thread(
        target=materialize,
        args=([backfill_step],),
        kwargs={"partition_key": "2026-05-01", "instance": queued_instance},
    )
    holder.start()
    try:
        running = _wait_for_a_started_run(queued_instance)
        ledger = ledger_from_env(queued_instance)
        assert "not due" in alert_if_not_started(queued_instance, ledger, at_central(day, 5, 14))
        alert_if_not_started(queued_instance, ledger, at_central(day, 5, 16))
        alert_if_not_started(queued_instance, ledger, at_central(day, 5, 17))
    finally:
        release.set()
        holder.join(30)
    [event] = alert_servers.triggers(key("not_started", day.isoformat()))
    summary, details = event["payload"]["summary"], event["payload"]["custom_details"]
    assert f"run {waiting} of the day is QUEUED" in summary
    assert f"behind run {running} (__ephemeral_asset_job__, 2026-05-01) running for" in summary
    assert details["blocking_run_id"] == running and details["waiting_run_id"] == waiting
    assert details["run_url"].endswith(f"/runs/{waiting}")


def _wait_for_a_started_run(instance: DagsterInstance) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=1)
        if records:
            return records[0].dagster_run.run_id
        time.sleep(0.1)
    raise AssertionError("the holding run never started")


@pytest.mark.integration
def test_deadline_cancels_the_days_queued_run_and_alerts_once(queued_instance, queue_run, alert_servers):
    instance = queued_instance
    # A day whose 09:00 deadline is still ahead of the wall clock, so the run was queued before it.
    day = central_day(utc_now()) + timedelta(days=2)
    run_id = queue_run(day.isoformat())
    ledger = ledger_from_env(instance)

    assert "before the" in enforce_deadline(instance, ledger, deadline_of(day) - timedelta(minutes=1))
    for minute in (0, 1, 2):
        enforce_deadline(instance, ledger, deadline_of(day) + timedelta(minutes=minute))
    run = instance.get_run_by_id(run_id)
    assert run.status == DagsterRunStatus.CANCELED
    assert run.tags[TERMINATED_BY_TAG] == DEADLINE_TERMINATION

    hear_cancellation(instance, run_id)  # the canceled-run sensor hears it too, and knows it was the deadline
    [event] = alert_servers.triggers(key("deadline", day.isoformat()))
    assert event["payload"]["custom_details"]["status_at_deadline"] == "QUEUED"
    assert event["payload"]["custom_details"]["run_url"] == f"{DAGSTER_UI}/runs/{run_id}"
    mail, business = dev_and_business_mails(alert_servers, key("deadline", day.isoformat()))
    assert DEADLINE.runbook_step in plain_text(mail)
    assert_plain_for_the_business(business, run_id)


@pytest.mark.integration
def test_a_rerun_queued_after_the_deadline_is_left_alone(queued_instance, queue_run, alert_servers):
    yesterday = central_day(utc_now()) - timedelta(days=1)  # its deadline passed before this run was queued
    run_id = queue_run(yesterday.isoformat())
    ledger = ledger_from_env(queued_instance)
    enforce_deadline(queued_instance, ledger, deadline_of(yesterday) + timedelta(hours=3))
    assert queued_instance.get_run_by_id(run_id).status == DagsterRunStatus.QUEUED
    assert alert_servers.pagerduty.state.accepted == []


@pytest.mark.integration
def test_a_run_canceled_by_hand_alerts_dev_as_run_canceled(queued_instance, queue_run, alert_servers):
    run_id = queue_run(PARTITION)
    queued_instance.run_coordinator.cancel_run(run_id)
    hear_cancellation(queued_instance, run_id)
    hear_cancellation(queued_instance, run_id)
    [event] = alert_servers.triggers(key("run_canceled"))
    assert event["payload"]["severity"] == "warning"
    _, business = dev_and_business_mails(alert_servers, key("run_canceled"))
    assert "stopped before it finished" in plain_text(business)


# --- reconciliation -----------------------------------------------------------------------------------------


def run_reconciled_day(instance: DagsterInstance, partition: str, mismatches: int):
    """A run of the day's file whose reconciliation check found ``mismatches`` of 20 sampled rows off."""

    @asset(
        key=RATINGS_FILE,
        partitions_def=daily_partitions,
        check_specs=[AssetCheckSpec(RECONCILIATION_CHECK.name, asset=RATINGS_FILE)],
    )
    def ratings_file() -> MaterializeResult:
        numbers = ReconciliationMetadata(compared=20, mismatches=mismatches, not_refetched=0)
        result = AssetCheckResult(
            check_name=RECONCILIATION_CHECK.name, passed=mismatches == 0, metadata=numbers.to_metadata()
        )
        return MaterializeResult(check_results=[result])

    return materialize([ratings_file], partition_key=partition, instance=instance)


@pytest.mark.integration
def test_a_failed_reconciliation_alerts_dev_once_and_a_passing_one_resolves_it(instance, alert_servers):
    ledger = ledger_from_env(instance)
    failed = run_reconciled_day(instance, PARTITION, mismatches=2)
    for _ in range(3):
        alert_failed_reconciliation(instance, ledger, MORNING)

    [event] = alert_servers.triggers(key("reconciliation"))
    details = event["payload"]["custom_details"]
    assert "2 of 20 sampled accounts differ from the ESG API" in event["payload"]["summary"]
    assert (details["accounts_compared"], details["accounts_differing"]) == (20, 2)
    assert details["run_url"] == f"{DAGSTER_UI}/runs/{failed.run_id}"
    [mail] = alert_servers.mails(key("reconciliation"))
    assert mail.recipients == [DEV]  # the development team's to investigate
    assert RECONCILIATION.runbook_step in plain_text(mail)

    run_reconciled_day(instance, PARTITION, mismatches=0)
    resolve_recovered_days(instance, ledger, MORNING)
    assert key("reconciliation") not in alert_servers.open_incidents()


@pytest.mark.integration
def test_reconciliation_sensor_runs_against_the_instance(instance, alert_servers):
    run_reconciled_day(instance, central_day(utc_now()).isoformat(), mismatches=1)
    assert "sent" in tick(esg_reconciliation_alert, instance=instance).skip_message


# --- resolve ------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_good_rerun_resolves_the_days_incidents_and_failure_rate_only_once_its_check_passes(
    instance, alert_servers
):
    ledger = ledger_from_env(instance)
    alert_if_not_started(instance, ledger, at_central(DAY, 5, 30))
    hear_failure(instance, run_stand_in_day(instance, PARTITION, error="ESG API down"))
    run_stand_in_day(instance, PARTITION, failed=20)  # succeeds, but 20% Failed
    alert_failed_checks(instance, ledger, MORNING)
    assert alert_servers.open_incidents() == {key("not_started"), key("run_failure"), key("failure_rate")}

    resolve_recovered_days(instance, ledger, MORNING)
    # The latest run succeeded and published the file, but its own failure_rate check failed.
    assert alert_servers.open_incidents() == {key("failure_rate")}

    run_stand_in_day(instance, PARTITION, failed=1)
    for _ in range(2):
        resolve_recovered_days(instance, ledger, MORNING)
    assert alert_servers.open_incidents() == set()
    assert len(alert_servers.resolves()) == 3  # one per kind, never repeated
    # The alert and its resolution, each to the developers and, in plain words, to the business.
    assert len(alert_servers.mails(key("failure_rate"))) == 4


@pytest.mark.integration
def test_a_failed_rerun_resolves_nothing(instance, alert_servers):
    ledger = ledger_from_env(instance)
    run_stand_in_day(instance, PARTITION)
    hear_failure(instance, run_stand_in_day(instance, PARTITION, error="ESG API down"))  # the latest run
    resolve_recovered_days(instance, ledger, MORNING)
    assert alert_servers.open_incidents() == {key("run_failure")}


# --- delivery failures --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_an_alert_no_channel_took_fails_the_tick_stays_pending_and_is_retried(
    instance, alert_servers, monkeypatch
):
    point_email_at_a_closed_port(monkeypatch)
    alert_servers.pagerduty.state.fail_next(400, times=1)  # PagerDuty refuses the first event
    today = central_day(utc_now())
    ledger = ledger_from_env(instance)

    with pytest.raises(AlertNotDelivered):
        alert_if_not_started(instance, ledger, at_central(today, 5, 20))
    assert ledger.entry(today.isoformat(), "not_started").state == PENDING

    for _ in range(2):
        tick(esg_alert_retry, instance=instance)
    alert_if_not_started(instance, ledger, at_central(today, 5, 21))  # the sensor's own next tick

    assert len(alert_servers.triggers(key("not_started", today.isoformat()))) == 1
    assert ledger.entry(today.isoformat(), "not_started").sent


# --- the sensors as a whole ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_sensor_starts_running():
    assert {sensor.default_status for sensor in all_sensors} == {DefaultSensorStatus.RUNNING}
    assert len({sensor.name for sensor in all_sensors}) == len(all_sensors)


@pytest.mark.unit
def test_every_alert_kind_has_a_runbook_section_starting_with_its_first_step():
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    for kind in ALERT_KINDS.values():
        section = re.search(rf"^### {kind.name}\n(.*?)(?=^### |\Z)", runbook, re.MULTILINE | re.DOTALL)
        assert section, f"docs/runbook.md has no section ### {kind.name}"
        step = kind.runbook_step.rsplit(" (docs/runbook.md", 1)[0]
        assert step in section.group(1), f"the first step of {kind.name} differs from the runbook"
        assert kind.severity in section.group(1) and kind.audience.replace("_", " ") in section.group(1)
