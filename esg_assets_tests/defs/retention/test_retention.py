"""Retention with a clock (the job's ``today``), never by waiting: files, warehouse rows and run logs older
than ESG_RETENTION_DAYS go, each deletion audited; a dry run only lists them; the schedule fires at 06:00.

A real run refuses a ``today`` after the real Central date and a period below ESG_RETENTION_MIN_DAYS, so the
tests that delete set the machine's clock (``clock_at``) to the day the run happens on."""

import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    DagsterInstance,
    build_init_resource_context,
    build_schedule_context,
    materialize,
)

import esg_assets.defs.retention.job as retention_module
from esg_assets.config.resources import dagster_resources
from esg_assets.defs.retention.job import retention_job
from esg_assets.defs.retention.plan import partitioned_tables, retention_cutoff, retention_refusals
from esg_assets.defs.retention.resource import RetentionFloor, RetentionResource
from esg_assets.defs.retention.schedule import retention_schedule
from esg_assets.lib.access.caller import SudoUser
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.audit.resource import AuditTrailResource
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.ratings import plan_fetch
from esg_assets.lib.warehouse.shard_stores import stage_shard_stores, stores_of_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY
from esg_assets_tests.support.published_day import publish_day
from esg_assets_tests.support.warehouses import warehouse_at

KEPT_DAY = DAY + timedelta(days=1)
RETENTION_DAYS = 2555


def today_keeping(first_kept: date) -> str:
    """The ``today`` whose cutoff keeps ``first_kept`` and everything after it."""
    return (first_kept + timedelta(days=RETENTION_DAYS)).isoformat()


@pytest.mark.integration  # build_init_resource_context makes a Dagster instance
def test_the_cutoff_keeps_exactly_the_retention_period():
    assert retention_cutoff(date(2033, 11, 18), 2555) == date(2026, 11, 20)
    with pytest.raises(ValueError, match="at least one day"):
        retention_cutoff(date(2033, 11, 18), 0)
    with pytest.raises(ValueError, match="ESG_RETENTION_DAYS must be a positive whole number"):
        RetentionResource(retention_days=0).setup_for_execution(build_init_resource_context())


@pytest.mark.unit
def test_the_schedule_runs_the_retention_job_at_six_central():
    assert (retention_schedule.cron_schedule, retention_schedule.execution_timezone) == (
        "0 6 * * *",
        "America/Chicago",
    )
    assert retention_schedule.job_name == "retention_job"
    moment = datetime(2026, 11, 25, 6, 0, tzinfo=ZoneInfo("America/Chicago"))
    requests = retention_schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=moment)
    ).run_requests
    assert len(requests) == 1


@pytest.fixture
def populated(job_environment, tmp_path):
    """A finished daily run of DAY (files, warehouse rows, its run) and a newer day's files, one instance."""
    with SandboxServer(SandboxConfig(accounts=30, seed=8)) as sandbox:
        paths = job_environment(sandbox)
        with DagsterInstance.ephemeral() as instance:
            daily = materialize(
                ALL_ASSETS, partition_key=DAY.isoformat(), resources=dagster_resources(), instance=instance
            )
            assert daily.success
            store = LocalReportStore(paths["output"])
            publish_day(
                store,
                key_file_keyring(load_key_ring(paths["key_file"])),
                paths["audit"],
                KEPT_DAY,
                accounts=10,
            )
            yield instance, paths, daily.run_id


@pytest.fixture
def clock_at(monkeypatch):
    """Set the clock the job reads the real Central date from: a run "happens" on that day."""

    def set_clock(day: str | date) -> None:
        current = date.fromisoformat(day) if isinstance(day, str) else day
        monkeypatch.setattr(retention_module, "_central_today", lambda: current)

    return set_clock


def run_retention(
    instance, today: str | None, dry_run: bool = False, succeed: bool = True, resources_config=None
):
    config = {"dry_run": dry_run, **({"today": today} if today else {})}
    result = retention_job.execute_in_process(
        instance=instance,
        resources=dagster_resources(),
        run_config={
            "ops": {"apply_retention": {"config": config}},
            **({"resources": resources_config} if resources_config else {}),
        },
        raise_on_error=False,
    )
    assert result.success is succeed, failure_message(result)
    return result


def failure_message(result) -> str:
    failures = [event for event in result.all_events if event.is_step_failure]
    if not failures:
        return ""
    data = failures[0].step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


def warnings_of(instance, result) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and not entry.is_dagster_event
    ]


def day_files(paths, day: date) -> list[str]:
    """Every stored file of the day: its manifest and its sets' files (``<versions>/<version>/<name>``)."""
    return sorted(
        path.relative_to(paths["output"]).as_posix()
        for path in paths["output"].glob(f"FirmESG*_{day:%Y%m%d}*/**/*")
        if path.is_file()
    ) + sorted(path.name for path in paths["output"].glob(f"FirmESG*_{day:%Y%m%d}*") if path.is_file())


def rows_before(paths, cutoff: date) -> dict[str, int]:
    with warehouse_at(str(paths["output"].parent / "warehouse.duckdb")).connect(read_only=True) as connection:
        return {
            table: connection.execute(
                f'SELECT count(*) FROM "{table}" WHERE partition_date < ?', [cutoff]
            ).fetchone()[0]
            for table in partitioned_tables(connection)
        }


def audit_records(paths) -> list[dict]:
    return [json.loads(line) for line in (paths["audit"] / "audit.jsonl").read_text().splitlines()]


@pytest.mark.e2e
def test_a_dry_run_lists_what_would_go_and_deletes_nothing(populated):
    instance, paths, _ = populated
    files_before, audit_before = day_files(paths, DAY), len(audit_records(paths))
    result = run_retention(instance, today_keeping(KEPT_DAY), dry_run=True)
    output = next(event for event in result.all_events if event.event_type_value == "STEP_OUTPUT")
    listed = output.event_specific_data.metadata["listed"].value
    assert all(f"file {name}" in listed for name in files_before)
    assert "rows of table esg_ratings" in listed and "rows of table account_snapshots" in listed
    assert day_files(paths, DAY) == files_before
    assert sum(rows_before(paths, KEPT_DAY).values()) > 0
    assert len(audit_records(paths)) == audit_before  # nothing deleted, nothing to audit


@pytest.mark.e2e
def test_retention_deletes_a_days_files_and_rows_and_audits_each_deletion(populated, clock_at):
    instance, paths, _ = populated
    clock_at(today_keeping(KEPT_DAY))
    expired = day_files(paths, DAY)
    names = {name.rsplit("/", 1)[-1] for name in expired}
    assert {"FirmESGRatings_20261120.csv.enc", "FirmESGRatings_20261120_errors.csv.enc",
            "FirmESGRatings_20261120.manifest.json"} <= names  # fmt: skip
    assert any(name.startswith("FirmESGSummary_20261120") for name in names)
    kept = day_files(paths, KEPT_DAY)
    rows = rows_before(paths, KEPT_DAY)
    run_retention(instance, today_keeping(KEPT_DAY))
    assert day_files(paths, DAY) == [] and day_files(paths, KEPT_DAY) == kept
    assert set(rows_before(paths, KEPT_DAY).values()) == {0}
    deletions = [record for record in audit_records(paths) if record["action"] == "retention_delete"]
    assert sorted(record["file"] for record in deletions if record["file"]) == sorted(expired)
    assert not list(paths["output"].glob("FirmESGRatings_20261120*"))  # the emptied folders went too
    assert all(record["day"] == DAY.isoformat() for record in deletions if record["file"])
    tables = [record["detail"] for record in deletions if not record["file"]]
    assert sorted(tables) == sorted(
        f"{count} rows of warehouse table {table} dated before {KEPT_DAY}"
        for table, count in rows.items()
        if count
    )


@pytest.mark.e2e
def test_run_logs_older_than_the_period_are_deleted_but_not_the_running_one(populated, clock_at):
    instance, paths, daily_run_id = populated
    clock_at(today_keeping(KEPT_DAY))
    run_retention(instance, today_keeping(KEPT_DAY))  # the runs were created today: all within the period
    assert instance.get_run_by_id(daily_run_id) is not None
    far_future = (
        datetime.now(ZoneInfo("America/Chicago")).date() + timedelta(days=RETENTION_DAYS + 1)
    ).isoformat()
    clock_at(far_future)
    final = run_retention(instance, None)  # no today: the clock's
    assert [run.run_id for run in instance.get_runs()] == [final.run_id]
    assert day_files(paths, KEPT_DAY) == []
    details = [
        record["detail"] or "" for record in audit_records(paths) if record["action"] == "retention_delete"
    ]
    assert any(detail.startswith(f"Dagster run {daily_run_id} and its event log") for detail in details)
    assert AuditLog(paths["audit"]).verify()[1] == []


@pytest.mark.integration
def test_a_dry_run_on_a_new_install_creates_nothing(tmp_path):
    resources = {
        "retention": RetentionResource(),
        "report_store": ReportStoreResource(
            output_uri=str(tmp_path / "reports"), audit=AuditTrailResource(log_dir=str(tmp_path / "a"))
        ),
        "warehouse": warehouse_at(str(tmp_path / "warehouse.duckdb")),
        "retention_floor": RetentionFloor(),
        "sudo_user": SudoUser(),
    }
    config = {"ops": {"apply_retention": {"config": {"dry_run": True}}}}
    with DagsterInstance.ephemeral() as instance:
        result = retention_job.execute_in_process(instance=instance, resources=resources, run_config=config)
    assert result.success
    assert list(tmp_path.iterdir()) == [tmp_path / "keys"]  # the test's own service key only


@pytest.mark.unit
def test_a_real_run_refuses_a_day_after_the_current_date_or_a_period_below_the_floor():
    now = date(2026, 12, 2)
    assert retention_refusals(now, now, 2555, 2555) == []
    assert retention_refusals(now - timedelta(days=400), now, 2555, 2555) == []
    (future,) = retention_refusals(date(2099, 1, 1), now, 2555, 2555)
    assert "today 2099-01-01 is later than the current date in America/Chicago (2026-12-02)" in future
    (short,) = retention_refusals(now, now, 30, 2555)
    assert "the retention period is 30 days, below the floor of 2555 days (ESG_RETENTION_MIN_DAYS)" in short
    assert len(retention_refusals(date(2099, 1, 1), now, 30, 2555)) == 2


@pytest.mark.unit
def test_the_floor_defaults_to_seven_years_and_may_be_lowered_but_not_below_a_day(monkeypatch):
    def floor() -> int:  # as the definitions read it from the environment
        return dagster_resources()["retention_floor"].resource_fn(None).days()

    monkeypatch.delenv("ESG_RETENTION_MIN_DAYS", raising=False)
    assert floor() == 2555 == RetentionFloor().days()
    monkeypatch.setenv("ESG_RETENTION_MIN_DAYS", "30")
    assert floor() == 30
    for bad in ("0", "-5", "seven years", "2555.5"):
        monkeypatch.setenv("ESG_RETENTION_MIN_DAYS", bad)
        with pytest.raises(ValueError, match="ESG_RETENTION_MIN_DAYS must be a positive whole number"):
            floor()


def everything(instance, paths) -> tuple:
    """What a refused run must leave exactly as it was: files, warehouse rows, runs, audit records."""
    with warehouse_at(str(paths["output"].parent / "warehouse.duckdb")).connect(read_only=True) as connection:
        rows = {
            table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in partitioned_tables(connection)
        }
    return (
        day_files(paths, DAY),
        day_files(paths, KEPT_DAY),
        rows,
        rows_before(paths, KEPT_DAY),
        sorted(run.run_id for run in instance.get_runs()),
        audit_records(paths),
    )


@pytest.mark.e2e
def test_a_real_run_with_a_future_today_fails_and_deletes_nothing(populated):
    instance, paths, daily_run_id = populated
    before = everything(instance, paths)
    assert before[0] and before[1] and sum(before[3].values()) > 0  # there is something to lose
    current = datetime.now(ZoneInfo("America/Chicago")).date()
    refused_runs = set()
    for today in (today_keeping(KEPT_DAY), "2099-01-01"):  # the issue's: it deleted every file, row and run
        result = run_retention(instance, today, succeed=False)
        message = failure_message(result)
        assert message.startswith("retention refused, nothing was deleted: ")
        assert f"today {today} is later than the current date in America/Chicago ({current})" in message
        refused_runs.add(result.run_id)
        after = everything(instance, paths)
        assert after[:4] == before[:4]  # files of both days, every table's rows
        assert set(after[4]) == {*before[4], *refused_runs}  # no run deleted; only the refused ones are new
        assert after[5] == before[5]  # no record of any deletion, nor of anything else
    assert instance.get_run_by_id(daily_run_id) is not None
    assert AuditLog(paths["audit"]).verify()[1] == []


@pytest.mark.e2e
def test_a_period_below_the_floor_fails_and_deletes_nothing(populated, clock_at, monkeypatch):
    instance, paths, _ = populated
    before = everything(instance, paths)
    # On this day a 30-day period would take DAY's files and rows: by the setting, or by the run's own config.
    monkeypatch.setenv("ESG_RETENTION_DAYS", "30")
    clock_at(KEPT_DAY + timedelta(days=30))
    result = run_retention(instance, None, succeed=False)
    assert (
        "the retention period is 30 days, below the floor of 2555 days (ESG_RETENTION_MIN_DAYS): set "
        "ESG_RETENTION_DAYS to at least 2555" in failure_message(result)
    )
    monkeypatch.delenv("ESG_RETENTION_DAYS")
    overridden = {"retention": {"config": {"retention_days": 30}}}  # the Launchpad's resource config
    result = run_retention(instance, None, succeed=False, resources_config=overridden)
    # Nor can the floor be lowered from the Launchpad: it is a resource without config, any config is ignored.
    lowered = {**overridden, "retention_floor": {"config": {"text": "1"}}}
    result = run_retention(instance, None, succeed=False, resources_config=lowered)
    assert "the retention period is 30 days, below the floor of 2555 days" in failure_message(result)
    assert "the retention period is 30 days, below the floor" in failure_message(result)
    monkeypatch.setenv("ESG_RETENTION_MIN_DAYS", "0")
    result = run_retention(instance, None, succeed=False, resources_config=overridden)
    assert "ESG_RETENTION_MIN_DAYS must be a positive whole number, got '0'" in failure_message(result)
    after = everything(instance, paths)
    assert after[:4] == before[:4] and after[5] == before[5]
    # A floor lowered in the environment (a test instance) lets the period through, with a warning.
    monkeypatch.setenv("ESG_RETENTION_MIN_DAYS", "7")
    result = run_retention(instance, None, resources_config=overridden)
    assert any(
        "ESG_RETENTION_MIN_DAYS is 7 days, below 2555" in line for line in warnings_of(instance, result)
    )
    assert day_files(paths, DAY) == [] and day_files(paths, KEPT_DAY) == before[1]


@pytest.mark.e2e
def test_a_dry_run_takes_a_future_date_and_a_short_period_and_still_lists(populated, monkeypatch):
    instance, paths, _ = populated
    before = everything(instance, paths)
    monkeypatch.setenv("ESG_RETENTION_DAYS", "1")
    result = run_retention(instance, "2099-01-01", dry_run=True)
    output = next(event for event in result.all_events if event.event_type_value == "STEP_OUTPUT")
    listed = output.event_specific_data.metadata["listed"].value
    assert all(f"file {name}" in listed for name in before[0] + before[1])
    assert "rows of table esg_ratings" in listed and "rows of table held_ratings" in listed
    (warning,) = [
        line for line in warnings_of(instance, result) if line.startswith("a real run would be refused")
    ]
    assert "today 2099-01-01 is later than the current date" in warning and "below the floor" in warning
    after = everything(instance, paths)
    assert after[:4] == before[:4] and after[5] == before[5]


@pytest.mark.e2e
def test_the_shard_stores_a_dead_run_left_go_with_their_day_and_are_audited(populated, clock_at):
    instance, paths, _ = populated
    warehouse = warehouse_at(str(paths["output"].parent / "warehouse.duckdb"))
    for day in (DAY, KEPT_DAY):  # as a run of the day that died fetching in two shards leaves them
        with warehouse.connect() as connection:
            plan_fetch(connection, day, full_refresh=True)
            stage_shard_stores(connection, Path(warehouse.path), day, 2, warehouse.keyring())
    expired = stores_of_day(Path(warehouse.path), DAY)
    kept = stores_of_day(Path(warehouse.path), KEPT_DAY)
    assert len(expired) == len(kept) == 2
    clock_at(today_keeping(KEPT_DAY))
    run_retention(instance, today_keeping(KEPT_DAY))
    assert stores_of_day(Path(warehouse.path), DAY) == []
    assert not any(Path(f"{store}.key").exists() for store in expired)
    assert stores_of_day(Path(warehouse.path), KEPT_DAY) == kept
    details = [record["detail"] for record in audit_records(paths) if record["action"] == "retention_delete"]
    for store in expired:
        assert f"shard store {store.name} (and its key), dated before {KEPT_DAY}" in details
