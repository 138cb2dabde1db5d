"""esg-report healthcheck: the outside check that catches a dead daemon and a missing file, alerting once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._daemon.types import DaemonHeartbeat

from esg_assets.cli.report import main
from esg_assets.core.file_names import manifest_file_name, ratings_file_name
from esg_assets.defs.alerting.job_day import central_day, utc_now
from esg_assets_tests.support.alert_loopback import (
    BUSINESS,
    DEV,
    point_email_at_a_closed_port,
)
from esg_assets_tests.support.paths import REPO_ROOT

PAST_DAY = date(2026, 11, 20)  # its 09:00 Central deadline has passed
FUTURE_DAY = central_day(utc_now()) + timedelta(days=3)  # not due yet


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A Dagster instance in DAGSTER_HOME and a report store, as on the job's host."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{tmp_path / 'reports'}")
    (tmp_path / "reports").mkdir()
    return tmp_path


def beat(age_seconds: float = 0.0) -> None:
    """A heartbeat from every daemon the instance needs, ``age_seconds`` old."""
    with DagsterInstance.get() as instance:
        for daemon in instance.get_required_daemon_types():
            instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - age_seconds, daemon, "test-daemon"))


def publish(home: Path, day: date) -> None:
    (home / "reports" / manifest_file_name(day)).write_bytes(b"{}")


def healthcheck(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["healthcheck", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_healthy_when_the_daemon_beats_and_the_file_is_published(home, capsys):
    beat()
    publish(home, PAST_DAY)
    code, out, _ = healthcheck(capsys, "--date", PAST_DAY.isoformat())
    assert code == 0
    assert out.splitlines()[0].startswith("ok daemon_down: dagster-daemon alive (every heartbeat within")
    assert out.splitlines()[1] == f"ok not_delivered: {ratings_file_name(PAST_DAY)} is published"


@pytest.mark.integration
def test_a_file_missing_after_the_deadline_fails(home, capsys):
    beat()
    code, out, _ = healthcheck(capsys, "--date", PAST_DAY.isoformat())
    assert code == 1
    assert (
        f"FAIL not_delivered: {ratings_file_name(PAST_DAY)} is missing after the 09:00 Central deadline"
        in out
    )


@pytest.mark.integration
def test_a_file_not_due_yet_is_fine(home, capsys):
    beat()
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 0 and "not published yet; due at" in out


@pytest.mark.integration
def test_a_stale_or_missing_heartbeat_fails(home, capsys, monkeypatch):
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 1 and "FAIL daemon_down" in out and "never" in out  # the daemon never ran

    beat(age_seconds=400)
    code, out, _ = healthcheck(capsys, "--date", FUTURE_DAY.isoformat())
    assert code == 1 and "no heartbeat within 300 s" in out

    monkeypatch.setenv("ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS", "600")
    assert healthcheck(capsys, "--date", FUTURE_DAY.isoformat())[0] == 0


@pytest.mark.integration
def test_alert_sends_each_alert_once_and_resolves_them_when_healthy(home, capsys, alert_servers):
    beat(age_seconds=3600)
    for _ in range(3):  # cron every 5 minutes: one page per day and kind
        assert healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")[0] == 1

    not_delivered, daemon_down = f"esg-{PAST_DAY}-not_delivered", f"esg-{PAST_DAY}-daemon_down"
    assert [len(alert_servers.triggers(k)) for k in (not_delivered, daemon_down)] == [1, 1]
    [mail] = alert_servers.mails(not_delivered)
    assert sorted(mail.recipients) == sorted([DEV, BUSINESS])  # the business hears of a missing file
    [mail] = alert_servers.mails(daemon_down)
    assert mail.recipients == [DEV]

    beat()
    publish(home, PAST_DAY)
    for _ in range(2):
        assert healthcheck(capsys, "--date", PAST_DAY.isoformat(), "--alert")[0] == 0
    assert alert_servers.open_incidents() == set()
    assert len(alert_servers.resolves()) == 2


@pytest.mark.integration
def test_an_alert_no_channel_takes_is_reported_and_retried_next_time(
    home, capsys, alert_servers, monkeypatch
):
    beat()
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
def test_cron_runs_it_as_a_command_and_reads_the_exit_code(home):
    beat()
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
