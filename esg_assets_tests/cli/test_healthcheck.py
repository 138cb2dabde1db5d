"""esg-report healthcheck: the outside check that catches a dead daemon and a missing file, alerting once.

The heartbeats are a real ``dagster-daemon run``'s: one beating for the module (the root conftest's
``dagster_daemon``), one that beat and was stopped, and a DAGSTER_HOME where no daemon ever ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from esg_assets.cli.report import main
from esg_assets.core.file_names import manifest_file_name, ratings_file_name
from esg_assets.defs.alerting.job_day import central_day, utc_now
from esg_assets_tests.support.alert_loopback import (
    assert_plain_for_the_business,
    dev_and_business_mails,
    point_email_at_a_closed_port,
)
from esg_assets_tests.support.dagster_processes import (
    MONITORED_LOCATION,
    QUEUE_AND_MONITORING_YAML,
    DagsterHome,
    heartbeats,
    make_home,
    start_daemon,
    stop,
    workspace_yaml,
)
from esg_assets_tests.support.paths import REPO_ROOT

PAST_DAY = date(2026, 11, 20)  # its 09:00 Central deadline has passed
FUTURE_DAY = central_day(utc_now()) + timedelta(days=3)  # not due yet


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A DAGSTER_HOME in which no daemon ever ran, and a report store, as on the job's host."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{tmp_path / 'reports'}")
    (tmp_path / "reports").mkdir()
    return tmp_path


@pytest.fixture
def daemon_running(home, dagster_daemon, monkeypatch) -> DagsterHome:
    """DAGSTER_HOME at a real ``dagster-daemon run`` that is beating (with ``home``'s report store).

    The module's tests share that instance, and with it the alert ledger: one test only alerts from it."""
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_daemon.path))
    return dagster_daemon


@pytest.fixture(scope="module")
def stopped_daemon(tmp_path_factory) -> DagsterHome:
    """A DAGSTER_HOME in which a real ``dagster-daemon run`` ran until every daemon beat, then was stopped."""
    home = make_home(
        tmp_path_factory.mktemp("stopped_daemon_home"),
        QUEUE_AND_MONITORING_YAML,
        workspace_yaml(MONITORED_LOCATION),
    )
    stop(start_daemon(home))
    return home


@pytest.fixture
def daemon_stopped(home, stopped_daemon, monkeypatch) -> DagsterHome:
    """DAGSTER_HOME at ``stopped_daemon``'s instance (with ``home``'s report store).

    The module's tests share that instance, and with it the alert ledger: one test only alerts from it."""
    monkeypatch.setenv("DAGSTER_HOME", str(stopped_daemon.path))
    return stopped_daemon


def silent_for_more_than(daemon: DagsterHome, seconds: int, monkeypatch) -> None:
    """ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS=``seconds``, and a wait until every heartbeat of the stopped
    ``daemon`` is older than that."""
    monkeypatch.setenv("ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS", str(seconds))
    newest = max(heartbeats(daemon).values())
    time.sleep(max(0.0, newest + seconds + 0.2 - time.time()))


def clock_ahead_by(seconds: int, monkeypatch) -> None:
    """The healthcheck's clock ``seconds`` ahead of the wall clock: every heartbeat looks that much older."""
    monkeypatch.setattr("esg_assets.cli.healthcheck.utc_now", lambda: utc_now() + timedelta(seconds=seconds))


def publish(home: Path, day: date) -> None:
    (home / "reports" / manifest_file_name(day)).write_bytes(b"{}")


def healthcheck(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["healthcheck", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_healthy_when_the_daemon_beats_and_the_file_is_published(home, daemon_running, capsys):
    publish(home, PAST_DAY)
    code, out, _ = healthcheck(capsys, "--date", PAST_DAY.isoformat())
    assert code == 0
    assert out.splitlines()[0].startswith("ok daemon_down: dagster-daemon alive (every heartbeat within")
    assert out.splitlines()[1] == f"ok not_delivered: {ratings_file_name(PAST_DAY)} is published"


@pytest.mark.integration
def test_a_file_missing_after_the_deadline_fails(daemon_running, capsys):
    code, out, _ = healthcheck(capsys, "--date", PAST_DAY.isoformat())
    assert code == 1
    assert (
        f"FAIL not_delivered: {ratings_file_name(PAST_DAY)} is missing after the 09:00 Central deadline"
        in out
    )


@pytest.mark.integration
def test_a_file_not_due_yet_is_fine(daemon_running, capsys):
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 0 and "not published yet; due at" in out


@pytest.mark.integration
def test_a_stale_or_missing_heartbeat_fails(home, stopped_daemon, capsys, monkeypatch):
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 1 and "FAIL daemon_down" in out and "never" in out  # the daemon never ran

    monkeypatch.setenv("DAGSTER_HOME", str(stopped_daemon.path))  # a daemon that beat, then stopped
    assert healthcheck(capsys, "--date", FUTURE_DAY.isoformat())[0] == 0  # only seconds ago
    silent_for_more_than(stopped_daemon, 1, monkeypatch)
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 1 and "FAIL daemon_down" in out and "no heartbeat within 1 s" in out
    monkeypatch.delenv("ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS")

    # 400 s after the daemon stopped (the healthcheck's clock moved on, not the test's): the default 300 s is
    # exceeded, and a larger setting accepts it.
    clock_ahead_by(400, monkeypatch)
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 1 and "no heartbeat within 300 s" in out

    monkeypatch.setenv("ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS", "600")
    assert healthcheck(capsys, "--date", FUTURE_DAY.isoformat())[0] == 0


@pytest.mark.integration
def test_alert_sends_each_alert_once_and_resolves_them_when_healthy(
    home, daemon_stopped, capsys, alert_servers, monkeypatch
):
    silent_for_more_than(daemon_stopped, 1, monkeypatch)  # the daemon stopped beating
    for _ in range(3):  # cron every 5 minutes: one page per day and kind
        assert healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")[0] == 1

    not_delivered, daemon_down = f"esg-{PAST_DAY}-not_delivered", f"esg-{PAST_DAY}-daemon_down"
    assert [len(alert_servers.triggers(k)) for k in (not_delivered, daemon_down)] == [1, 1]
    for dedup_key in (not_delivered, daemon_down):  # the business hears of a missing file, and why it may be
        _, business = dev_and_business_mails(alert_servers, dedup_key)
        assert_plain_for_the_business(business)

    # Its heartbeats, seconds old, are within the default 300 s again: healthy, as once the daemon is back.
    monkeypatch.delenv("ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS")
    publish(home, PAST_DAY)
    for _ in range(2):
        assert healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")[0] == 0
    assert alert_servers.open_incidents() == set()
    assert len(alert_servers.resolves()) == 2


@pytest.mark.integration
def test_an_alert_no_channel_takes_is_reported_and_retried_next_time(
    daemon_running, capsys, alert_servers, monkeypatch
):
    point_email_at_a_closed_port(monkeypatch)
    alert_servers.pagerduty.state.fail_next(400, times=1)
    code, _, err = healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")
    assert code == 1 and "not delivered" in err and "the next healthcheck tries again" in err

    assert healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")[0] == 1
    assert len(alert_servers.triggers(f"esg-{PAST_DAY}-not_delivered")) == 1


@pytest.mark.unit
def test_without_dagster_home_it_is_a_configuration_error(home, capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME")
    code, _, err = healthcheck(capsys, "--date", PAST_DAY.isoformat())
    assert code == 2 and "DAGSTER_HOME is not set" in err


@pytest.mark.integration
def test_cron_runs_it_as_a_command_and_reads_the_exit_code(daemon_running):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", "healthcheck", "--date", PAST_DAY.isoformat()],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr
    assert "FAIL not_delivered" in completed.stdout and "ok daemon_down" in completed.stdout
