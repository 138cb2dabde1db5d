"""The daily job on a PostgreSQL Dagster instance set up as docs/operations.md says: schedule tick, run,
checks and sensors all read and write that database.

A real PostgreSQL (the ``postgres_server`` fixture: Debian's binaries, a cluster of its own on 127.0.0.1, TLS
and passwords only) gets the role and database of the page's SQL; DAGSTER_HOME holds the project's
dagster.yaml plus the page's ``storage: postgres:`` block; DAGSTER_PG_URL is the page's URL (driver named,
``sslmode=verify-full`` and the CA in it) with this server's address; the page's ``dagster instance
migrate`` creates the tables. Every block so marked in the page is read from it here, so the page and the
test cannot drift apart.

Then a real ``dagster-daemon`` ticks ``esg_daily_schedule``. The schedule fires at 05:00 Central only, so
the test moves the schedule's start (its instigator state, stored in PostgreSQL) to before the latest
05:00 Central, and the daemon catches that tick up, as it does after downtime: its run of that day runs the
job against the sandbox, a fifth of whose accounts fail, so the non-blocking ``failure_rate`` check fails
and the daemon's sensors alert it (PagerDuty and email on loopback, the ledger's observations) and push the
run's metrics (a real Pushgateway). Everything is then read back through ``DagsterInstance.get()`` on that
home, and straight from PostgreSQL's tables with psycopg2.

The day is run with one shard (every step in the run worker) and with two (``ESG_SHARDS=2``: a process per
step, each shard's step in its own), each case on a PostgreSQL of its own.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from esg_assets.core.keys import (
    ALERT_LEDGER,
    COMPLETENESS_CHECK,
    DAILY_ASSETS,
    FAILURE_RATE_CHECK,
    FORMAT_CHECK,
    RECONCILIATION_CHECK,
)
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.verification import committed_manifest
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support import postgres_server as postgres_support
from esg_assets_tests.support.alert_loopback import dev_and_business_mails, ledger_from_env
from esg_assets_tests.support.dagster_processes import (
    BIN,
    PROJECT_LOCATION,
    DagsterHome,
    running_daemon,
    workspace_yaml,
)
from esg_assets_tests.support.doc_blocks import blocks_tested_by, path_of_test
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.postgres_server import PostgresServer
from esg_assets_tests.support.pushgateway import gateway_samples

OPERATIONS = "docs/operations.md"
THIS_FILE = path_of_test(__file__)
SCHEDULE = "esg_daily_schedule"
FAILURE_RATE_SENSOR = "esg_failure_rate_alert"
METRICS_SENSOR = "esg_run_metrics_success"
CENTRAL = ZoneInfo("America/Chicago")
WAIT_SECONDS = 600  # an upper bound for a slow, busy machine, never a measure of speed
# The shard counts the day is run with (ESG_SHARDS).
SHARDS = (1, 2)


# --- the page's blocks, made concrete for this server -------------------------------------------------------


def page_blocks() -> dict[str, list[str]]:
    """The page's blocks marked for this file, by language: sql, yaml, and the two sh blocks."""
    blocks: dict[str, list[str]] = {}
    for block in blocks_tested_by(OPERATIONS, THIS_FILE):
        blocks.setdefault(block.language, []).append(block.text)
    return blocks


def create_role_and_database(server: PostgresServer, sql: str, password: str) -> None:
    """The page's SQL as the cluster's superuser, its password placeholder filled."""
    assert "'...'" in sql, sql
    connection = server.superuser()
    try:
        with connection.cursor() as cursor:
            for statement in filter(None, (part.strip() for part in sql.split(";"))):
                cursor.execute(statement.replace("'...'", f"'{password}'"))
    finally:
        connection.close()


def pg_url(environment_block: str, server: PostgresServer, password: str) -> str:
    """The page's DAGSTER_PG_URL with this server's address, the role's password and the server's CA."""
    [url] = re.findall(r"^DAGSTER_PG_URL='([^']+)'$", environment_block, flags=re.MULTILINE)
    assert url.startswith("postgresql+psycopg2://dagster:<password>@db.firm.example:5432/dagster?"), url
    assert "sslmode=verify-full" in url and "sslrootcert=/etc/esg/pg-ca.pem" in url, url
    return (
        url.replace("<password>", password)
        .replace("db.firm.example:5432", f"{server.host}:{server.port}")
        .replace("/etc/esg/pg-ca.pem", str(server.ca_file))
    )


def dagster_commands(sh_block: str) -> list[tuple[list[str], str]]:
    """Each ``dagster ...`` command of the page's migrate block (its ``sudo -u esg env ...`` prefix is the
    host's, not Dagster's) with the comment after it."""
    found = re.findall(r"\.venv/bin/dagster ([^#\n]+?)\s*(?:#\s*(.*))?$", sh_block, flags=re.MULTILINE)
    return [(arguments.split(), comment) for arguments, comment in found]


# --- the schedule's tick ------------------------------------------------------------------------------------


def latest_five_central(now: datetime) -> datetime:
    """The latest 05:00 America/Chicago at or before ``now``: the tick the daemon catches up."""
    today = now.astimezone(CENTRAL).date()
    tick = datetime.combine(today, clock(5), tzinfo=CENTRAL)
    return tick if tick <= now else datetime.combine(today - timedelta(days=1), clock(5), tzinfo=CENTRAL)


def schedule_state(instance: DagsterInstance):
    states = [state for state in instance.all_instigator_state() if state.instigator_name == SCHEDULE]
    return states[0] if states else None


def wait_for(what: str, found, home: DagsterHome):
    """``found()`` once it returns something truthy; fails after WAIT_SECONDS with the daemon's log."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what} after {WAIT_SECONDS} s\n{home.log('daemon.log')}")


def start_the_schedule_before(home: DagsterHome, instance: DagsterInstance, tick: datetime) -> None:
    """Lets the daemon record the schedule (RUNNING as declared in code, started now), then moves its
    start to a minute before ``tick``, as if the daemon had run then: its next start catches ``tick`` up.

    The daemon first runs until the run metrics sensor has ticked too: a run status sensor's first tick sets
    its cursor to the end of the event log, so it never hears a run that ended before it.
    """
    with running_daemon(home):
        state = wait_for(
            "the daemon recorded no state of the schedule", lambda: schedule_state(instance), home
        )
        wait_for(f"{METRICS_SENSOR} never ticked", lambda: sensor_ticked(instance, METRICS_SENSOR), home)
    data = state.instigator_data
    moved = data._replace(
        start_timestamp=(tick - timedelta(minutes=1)).timestamp(), last_iteration_timestamp=None
    )
    instance.update_instigator_state(state.with_data(moved))


def ticks_of(instance: DagsterInstance, name: str) -> list:
    """The ticks of the schedule or sensor ``name``, newest first (none before its state is recorded)."""
    states = [state for state in instance.all_instigator_state() if state.instigator_name == name]
    return [
        tick for state in states for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)
    ]


def sensor_ticked(instance: DagsterInstance, sensor: str) -> bool:
    """Whether a tick of ``sensor`` has finished (a daemon stopped mid-tick leaves it STARTED)."""
    return any(tick.status.value != "STARTED" for tick in ticks_of(instance, sensor))


def sensor_said(instance: DagsterInstance, sensor: str, words: str) -> bool:
    """Whether a finished tick of ``sensor`` skipped saying ``words`` (the alert sensors report so)."""
    return any(words in (tick.skip_reason or "") for tick in ticks_of(instance, sensor))


def finished_scheduled_run(instance: DagsterInstance):
    records = instance.get_run_records(RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))
    finished = [record.dagster_run for record in records if record.dagster_run.is_finished]
    return finished[0] if finished else None


# --- the test -----------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("shards", SHARDS, ids=lambda shards: f"shards={shards}")
def test_schedule_run_checks_and_sensors_read_and_write_the_postgres_instance(
    shards, postgres_server, job_environment, alert_servers, pushgateway, monkeypatch, tmp_path
):
    blocks = page_blocks()
    assert {language: len(texts) for language, texts in blocks.items()} == {"sql": 1, "yaml": 1, "sh": 2}
    password = secrets.token_urlsafe(18)
    create_role_and_database(postgres_server, blocks["sql"][0], password)
    for refused in ({"password": "not-the-password"}, {"password": password, "sslmode": "disable"}):
        with pytest.raises(psycopg2.OperationalError):  # a password, and TLS, or no connection
            postgres_server.connect("dagster", dbname="dagster", **refused)
    url_block, migrate_block = blocks["sh"]

    config = SandboxConfig(accounts=60, seed=5, failure_rate=0.2, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_MAX_ATTEMPTS="1")
        settings = {
            "DAGSTER_PG_URL": pg_url(url_block, postgres_server, password),
            "ESG_PUSHGATEWAY_URL": pushgateway,
            # The deadline sensor terminates today's run still going at the deadline hour: 23:00 Central keeps
            # it from ending the catch-up run of a test that happens to run at 09:00 Central.
            "ESG_DEADLINE_HOUR": "23",
        }
        if shards > 1:
            settings["ESG_SHARDS"] = str(shards)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        home = postgres_home(tmp_path / "dagster_home", blocks["yaml"][0])
        monkeypatch.setenv("DAGSTER_HOME", str(home.path))

        for arguments, comment in dagster_commands(migrate_block):
            shown = run_dagster(home, arguments)
            for storage in re.findall(r"\b(Postgres\w+Storage)\b", comment):
                assert storage in shown, shown  # `dagster instance info` names what the page says

        with DagsterInstance.get() as instance:
            tick = latest_five_central(datetime.now(timezone.utc))
            day = tick.date()
            start_the_schedule_before(home, instance, tick)
            with running_daemon(home):
                run = wait_for(
                    "no run of the schedule finished", lambda: finished_scheduled_run(instance), home
                )
                assert run.status == DagsterRunStatus.SUCCESS, home.log("daemon.log")
                # The tick's end, not only the page: a daemon stopped mid-tick leaves it STARTED.
                sent = f"esg-{day}-failure_rate sent"
                wait_for(
                    f"no tick said {sent}", lambda: sensor_said(instance, FAILURE_RATE_SENSOR, sent), home
                )
                wait_for("no metrics pushed", lambda: gateway_samples(pushgateway, day.isoformat()), home)
                # and the tick that pushed them ended (the daemon stopped mid-tick would leave it unrecorded)
                wait_for(
                    f"no tick of {METRICS_SENSOR} succeeded",
                    lambda: "SUCCESS" in {tick.status.value for tick in ticks_of(instance, METRICS_SENSOR)},
                    home,
                )
            assert_read_back_through_the_instance(instance, run, day)
            assert_each_shard_fetched_in_a_step(instance, run, shards)
            names = {state.selector_id: state.instigator_name for state in instance.all_instigator_state()}
        assert_in_postgres_tables(postgres_server, password, run.run_id, day, names)

    assert len(alert_servers.triggers(f"esg-{day}-failure_rate")) == 1  # PagerDuty paged once
    dev_and_business_mails(alert_servers, f"esg-{day}-failure_rate")  # one email each
    keyring = key_file_keyring(load_key_ring(paths["key_file"]))
    assert committed_manifest(LocalReportStore(paths["output"]), keyring, day).run_id == run.run_id


def assert_each_shard_fetched_in_a_step(instance: DagsterInstance, run, shards: int) -> None:
    """One fetch_shard step per shard, recorded in PostgreSQL; above one shard, each in its own process."""
    started = {
        entry.step_key: entry.dagster_event.pid
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
    }
    fetched = {key: pid for key, pid in started.items() if key.startswith("esg_ratings.fetch_shard")}
    assert set(fetched) == {f"esg_ratings.fetch_shard[shard_{n}_of_{shards}]" for n in range(1, shards + 1)}
    if shards > 1:
        assert len(set(started.values())) == len(started)  # a process per step
    else:
        assert len(set(started.values())) == 1  # every step in the run worker


def postgres_home(path: Path, storage_yaml: str) -> DagsterHome:
    """DAGSTER_HOME with the project's dagster.yaml and the page's storage block after it, and the project's
    code location; nothing is created in the database (the page's ``dagster instance migrate`` does that)."""
    path.mkdir(parents=True)
    (path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text() + "\n" + storage_yaml + "\n")
    workspace = path / "workspace.yaml"
    workspace.write_text(workspace_yaml(PROJECT_LOCATION))
    environment = {**os.environ, "DAGSTER_HOME": str(path), "PYTHONPATH": str(REPO_ROOT)}
    return DagsterHome(path, workspace, environment)


def run_dagster(home: DagsterHome, arguments: list[str]) -> str:
    completed = subprocess.run(
        [str(BIN / "dagster"), *arguments],
        cwd=REPO_ROOT,
        env=home.environment,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def assert_read_back_through_the_instance(instance: DagsterInstance, run, day: date) -> None:
    partition = day.isoformat()
    assert {type(storage).__name__ for storage in (instance.run_storage, instance.event_log_storage)} == {
        "PostgresRunStorage",
        "PostgresEventLogStorage",
    }
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

    # The schedule's tick: recorded, successful, its run key the day, the run it launched ours.
    state = schedule_state(instance)
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    launched = [tick for tick in ticks if tick.run_ids]
    assert [(tick.status.value, tick.run_ids, tick.run_keys) for tick in launched] == [
        ("SUCCESS", [run.run_id], [partition])
    ]
    assert run.tags["dagster/partition"] == partition

    # The run: the five assets of the day materialized by it.
    for key in DAILY_ASSETS:
        event = instance.get_latest_materialization_event(key)
        assert (event.run_id, event.dagster_event.partition) == (run.run_id, partition), key

    # The checks: failure_rate failed (a fifth of the accounts), the blocking ones passed.
    evaluations = [
        entry.dagster_event.event_specific_data
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    outcomes = {evaluation.asset_check_key: evaluation.passed for evaluation in evaluations}
    assert outcomes == {
        FAILURE_RATE_CHECK: False,
        COMPLETENESS_CHECK: True,
        FORMAT_CHECK: True,
        RECONCILIATION_CHECK: True,
    }

    # The sensors: the failure_rate alert is in the ledger the instance keeps, sent, naming the run.
    entry = ledger_from_env(instance).entry(partition, "failure_rate")
    assert entry is not None and entry.sent and entry.alert.run_id == run.run_id
    # The run metrics sensor heard the run: a tick of it succeeded (the Pushgateway got the metrics).
    assert "SUCCESS" in {tick.status.value for tick in ticks_of(instance, METRICS_SENSOR)}


def assert_in_postgres_tables(
    server: PostgresServer, password: str, run_id: str, day: date, names: dict[str, str]
) -> None:
    """The same facts straight from PostgreSQL, as the role of the page's SQL reads them (``names``: each
    schedule's and sensor's name by its selector id)."""
    connection = server.connect("dagster", password, "dagster")
    try:
        with connection.cursor() as cursor:
            _assert_tables(cursor, run_id, day, names)
    finally:
        connection.close()


def _assert_tables(cursor, run_id: str, day: date, names: dict[str, str]) -> None:
    cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    tables = {name for (name,) in cursor.fetchall()}
    assert {"runs", "event_logs", "asset_check_executions", "instigators", "job_ticks"} <= tables, tables

    cursor.execute("SELECT status, partition FROM runs WHERE run_id = %s", (run_id,))
    assert cursor.fetchall() == [("SUCCESS", day.isoformat())]

    cursor.execute(
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY 1", (run_id,)
    )
    events = dict(cursor.fetchall())  # stored under the enum's values: RUN_SUCCESS is "PIPELINE_SUCCESS"
    assert events[DagsterEventType.RUN_SUCCESS.value] == 1, events
    assert events[DagsterEventType.ASSET_CHECK_EVALUATION.value] == 4, events
    assert events[DagsterEventType.ASSET_MATERIALIZATION.value] == len(DAILY_ASSETS), events

    cursor.execute(
        "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s", (run_id,)
    )
    assert dict(cursor.fetchall())["failure_rate"] == "FAILED"

    # The alert ledger: observations of esg_alert_ledger written by the sensors, no run of their own.
    cursor.execute(
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = %s AND asset_key = %s",
        (DagsterEventType.ASSET_OBSERVATION.value, ALERT_LEDGER.to_string()),
    )
    assert cursor.fetchone()[0] >= 1

    # The ticks whose body names the run: the schedule's that launched it, and the run metrics sensor's.
    cursor.execute("SELECT selector_id, status FROM job_ticks WHERE tick_body LIKE %s", (f"%{run_id}%",))
    ticks = {(names.get(selector), status) for selector, status in cursor.fetchall()}
    assert {(SCHEDULE, "SUCCESS"), (METRICS_SENSOR, "SUCCESS")} <= ticks, ticks


@pytest.mark.unit
def test_without_postgresql_binaries_the_test_skips_saying_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres_support, "POSTGRES_ROOT", tmp_path)
    assert "apt-get install postgresql" in postgres_support.missing_reason()
    for major in ("9", "15", "16"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "initdb").touch()
    assert postgres_support.postgres_bin() == tmp_path / "16" / "bin"  # the newest, by number
