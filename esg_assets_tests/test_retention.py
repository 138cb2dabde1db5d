"""Retention with a clock (the job's ``today``), never by waiting: files, warehouse rows and run logs older
than ESG_RETENTION_DAYS go, each deletion audited; a dry run only lists them; the schedule fires at 06:00."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import DagsterInstance, build_init_resource_context, build_schedule_context, materialize

from esg_assets.audit.log import AuditLog
from esg_assets.crypto.keyring import key_file_keyring
from esg_assets.crypto.keys import load_key_ring
from esg_assets.resources.from_env import resources_from_env
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.resources.warehouse import WarehouseResource
from esg_assets.retention import retention_job, retention_schedule
from esg_assets.retention.plan import partitioned_tables, retention_cutoff
from esg_assets.retention.resource import RetentionResource
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets.storage.local import LocalReportStore
from esg_assets_tests.pipeline_runs import ALL_ASSETS, DAY
from esg_assets_tests.published_day import publish_day

KEPT_DAY = DAY + timedelta(days=1)
RETENTION_DAYS = 2555


def today_keeping(first_kept: date) -> str:
    """The ``today`` whose cutoff keeps ``first_kept`` and everything after it."""
    return (first_kept + timedelta(days=RETENTION_DAYS)).isoformat()


def test_the_cutoff_keeps_exactly_the_retention_period():
    assert retention_cutoff(date(2033, 11, 18), 2555) == date(2026, 11, 20)
    with pytest.raises(ValueError, match="at least one day"):
        retention_cutoff(date(2033, 11, 18), 0)
    with pytest.raises(ValueError, match="ESG_RETENTION_DAYS must be a positive whole number"):
        RetentionResource(retention_days=0).setup_for_execution(build_init_resource_context())


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
                ALL_ASSETS, partition_key=DAY.isoformat(), resources=resources_from_env(), instance=instance
            )
            assert daily.success
            store = LocalReportStore(paths["output"])
            publish_day(store, key_file_keyring(load_key_ring(paths["key_file"])), paths["audit"], KEPT_DAY, accounts=10)
            yield instance, paths, daily.run_id


def run_retention(instance, today: str, dry_run: bool = False):
    result = retention_job.execute_in_process(
        instance=instance,
        resources=resources_from_env(),
        run_config={"ops": {"apply_retention": {"config": {"today": today, "dry_run": dry_run}}}},
    )
    assert result.success
    return result


def day_files(paths, day: date) -> list[str]:
    """Every stored file of the day: its manifest and its sets' files (``<versions folder>/<version>/<name>``)."""
    return sorted(
        path.relative_to(paths["output"]).as_posix()
        for path in paths["output"].glob(f"FirmESG*_{day:%Y%m%d}*/**/*") if path.is_file()
    ) + sorted(path.name for path in paths["output"].glob(f"FirmESG*_{day:%Y%m%d}*") if path.is_file())


def rows_before(paths, cutoff: date) -> dict[str, int]:
    with duckdb.connect(str(paths["output"].parent / "warehouse.duckdb"), read_only=True) as connection:
        return {
            table: connection.execute(
                f'SELECT count(*) FROM "{table}" WHERE partition_date < ?', [cutoff]
            ).fetchone()[0]
            for table in partitioned_tables(connection)
        }


def audit_records(paths) -> list[dict]:
    return [json.loads(line) for line in (paths["audit"] / "audit.jsonl").read_text().splitlines()]


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


def test_retention_deletes_a_days_files_and_rows_and_audits_each_deletion(populated):
    instance, paths, _ = populated
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


def test_run_logs_older_than_the_period_are_deleted_but_not_the_running_one(populated):
    instance, paths, daily_run_id = populated
    run_retention(instance, today_keeping(KEPT_DAY))  # the runs were created today: all within the period
    assert instance.get_run_by_id(daily_run_id) is not None
    far_future = (
        datetime.now(ZoneInfo("America/Chicago")).date() + timedelta(days=RETENTION_DAYS + 1)
    ).isoformat()
    final = run_retention(instance, far_future)
    assert [run.run_id for run in instance.get_runs()] == [final.run_id]
    assert day_files(paths, KEPT_DAY) == []
    details = [
        record["detail"] or "" for record in audit_records(paths) if record["action"] == "retention_delete"
    ]
    assert any(detail.startswith(f"Dagster run {daily_run_id} and its event log") for detail in details)
    assert AuditLog(paths["audit"]).verify()[1] == []


def test_a_dry_run_on_a_new_install_creates_nothing(tmp_path):
    resources = {
        "retention": RetentionResource(),
        "report_store": ReportStoreResource(
            output_uri=str(tmp_path / "reports"), audit_log_dir=str(tmp_path / "a")
        ),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
    }
    config = {"ops": {"apply_retention": {"config": {"dry_run": True}}}}
    with DagsterInstance.ephemeral() as instance:
        result = retention_job.execute_in_process(instance=instance, resources=resources, run_config=config)
    assert result.success
    assert list(tmp_path.iterdir()) == []
