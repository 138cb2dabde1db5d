"""``retention_job``: delete what the retention period (ESG_RETENTION_DAYS) has run out on, each deletion
audited; with ``dry_run: true`` only list it. A real run refuses, before it opens anything, a ``today`` after
the real Central date and a period below ESG_RETENTION_MIN_DAYS: a deletion cannot be undone.

DuckDB takes one writer at a time, and this job deletes warehouse rows: it must not run while the daily job
writes. dagster.yaml limits the instance to one run at a time (``max_concurrent_runs: 1``), so a retention
run that the 06:00 schedule starts while the 05:00 daily run is still going waits in the queue for it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from dagster import Config, Failure, OpExecutionContext, ResourceParam, job, op
from pydantic import Field

from esg_assets.core.file_names import day_of_file_name
from esg_assets.core.keys import RETENTION_JOB_NAME
from esg_assets.core.partitions import JOB_TIMEZONE
from esg_assets.core.settings import RETENTION_DAYS, RETENTION_MIN_DAYS
from esg_assets.defs.retention.plan import RetentionPlan, plan_retention, retention_cutoff, retention_refusals
from esg_assets.defs.retention.resource import RetentionFloor, RetentionResource
from esg_assets.lib.access.caller import Caller, SudoUser
from esg_assets.lib.audit.log import DONE, RETENTION_DELETE, AuditEvent, AuditLog
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.report_store.store import ReportStore
from esg_assets.lib.warehouse.encrypted import remove_database
from esg_assets.lib.warehouse.resource import WarehouseResource

_LISTED = 200  # names shown in the run's metadata; the log has them all


class RetentionConfig(Config):
    dry_run: bool = Field(default=False, description="List what would be deleted, delete nothing.")
    today: str | None = Field(
        default=None,
        description="YYYY-MM-DD to apply the policy as of (default: today, Central time); a real run refuses "
        "a day later than today, a dry run takes any.",
    )


@op(
    description="Deletes the day files, warehouse rows and Dagster runs older than ESG_RETENTION_DAYS; a "
    "real run refuses a future today and a period below ESG_RETENTION_MIN_DAYS."
)
def apply_retention(
    context: OpExecutionContext,
    config: RetentionConfig,
    retention: RetentionResource,
    retention_floor: ResourceParam[RetentionFloor],
    sudo_user: ResourceParam[SudoUser],
    report_store: ReportStoreResource,
    warehouse: WarehouseResource,
) -> None:
    current_day = _central_today()
    today = date.fromisoformat(config.today) if config.today else current_day
    _refuse_what_cannot_be_undone(
        context, config, today, current_day, retention.retention_days, retention_floor
    )
    cutoff = retention_cutoff(today, retention.retention_days)
    store = report_store.store()
    with _warehouse_connection(warehouse, config.dry_run) as connection:
        plan = plan_retention(
            store, connection, context.instance, cutoff, context.run_id, warehouse=Path(warehouse.path)
        )
        verb = "would delete" if config.dry_run else "deleting"
        for line in _describe(plan):
            context.log.info(f"{verb} {line}")
        if not config.dry_run:
            audit = report_store.audit_log()
            actor = sudo_user.caller(audit.directory)
            _delete_files(store, plan, audit, actor, context.run_id)
            _delete_rows(connection, plan, audit, actor, context.run_id)
            _delete_runs(context, plan, audit, actor)
            _delete_shard_stores(plan, audit, actor, context.run_id)
    context.log.info(
        f"retention as of {today} ({retention.retention_days} days, everything before {cutoff}): "
        f"{'would delete' if config.dry_run else 'deleted'} {len(plan.files)} files, "
        f"{sum(plan.warehouse_rows.values())} warehouse rows, {len(plan.runs)} runs"
    )
    context.add_output_metadata(
        {
            "dry_run": config.dry_run,
            "cutoff": cutoff.isoformat(),
            "files": len(plan.files),
            "warehouse_rows": sum(plan.warehouse_rows.values()),
            "runs": len(plan.runs),
            "listed": "\n".join(_describe(plan)[:_LISTED]) or "nothing",
        }
    )


@job(
    name=RETENTION_JOB_NAME, description="Daily retention (ESG_RETENTION_DAYS): files, warehouse rows, runs."
)
def retention_job():
    apply_retention()


@contextmanager
def _warehouse_connection(warehouse: WarehouseResource, dry_run: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    # A dry run only reads; a warehouse that does not exist yet (a new install) holds nothing to delete.
    if dry_run and not Path(warehouse.path).exists():
        with duckdb.connect(":memory:") as empty:
            yield empty
        return
    with warehouse.connect(read_only=dry_run) as connection:
        yield connection


def _central_today() -> date:
    """The real current date in America/Chicago: the latest ``today`` a real run accepts."""
    return datetime.now(ZoneInfo(JOB_TIMEZONE)).date()


def _refuse_what_cannot_be_undone(
    context: OpExecutionContext,
    config: RetentionConfig,
    today: date,
    current_day: date,
    retention_days: int,
    floor: RetentionFloor,
) -> None:
    """Fail a real run, before anything is opened or deleted, when its date or period cannot be right."""
    try:
        floor_days = floor.days()
    except ValueError as error:
        raise Failure(description=f"retention refused, nothing was deleted: {error}") from None
    if floor_days < int(RETENTION_MIN_DAYS.default):
        context.log.warning(
            f"{RETENTION_MIN_DAYS.name} is {floor_days} days, below {RETENTION_MIN_DAYS.default} "
            f"(seven years): {RETENTION_DAYS.name} is only held to that; for test instances, never in "
            "production"
        )
    refusals = retention_refusals(today, current_day, retention_days, floor_days)
    if not refusals:
        return
    if config.dry_run:
        context.log.warning(f"a real run would be refused: {'; '.join(refusals)}")
        return
    raise Failure(description=f"retention refused, nothing was deleted: {'; '.join(refusals)}")


def _describe(plan: RetentionPlan) -> list[str]:
    return [
        *(f"file {name}" for name in plan.files),
        *(f"{rows} rows of table {table}" for table, rows in plan.warehouse_rows.items() if rows),
        *(f"run {run_id}" for run_id in plan.runs),
        *(f"shard store {path.name}" for path in plan.shard_stores),
    ]


def _delete_files(
    store: ReportStore, plan: RetentionPlan, audit: AuditLog, actor: Caller, run_id: str
) -> None:
    for name in plan.files:
        store.delete(name)
        audit.append(
            AuditEvent(RETENTION_DELETE, DONE, file=name, day=day_of_file_name(name), run_id=run_id), actor
        )


def _delete_rows(
    connection: duckdb.DuckDBPyConnection, plan: RetentionPlan, audit: AuditLog, actor: Caller, run_id: str
) -> None:
    for table, rows in plan.warehouse_rows.items():
        if not rows:
            continue
        connection.execute(f'DELETE FROM "{table}" WHERE partition_date < ?', [plan.cutoff])
        detail = f"{rows} rows of warehouse table {table} dated before {plan.cutoff}"
        audit.append(AuditEvent(RETENTION_DELETE, DONE, detail=detail, run_id=run_id), actor)


def _delete_shard_stores(plan: RetentionPlan, audit: AuditLog, actor: Caller, run_id: str) -> None:
    for path in plan.shard_stores:
        remove_database(path)
        detail = f"shard store {path.name} (and its key), dated before {plan.cutoff}"
        audit.append(AuditEvent(RETENTION_DELETE, DONE, detail=detail, run_id=run_id), actor)


def _delete_runs(context: OpExecutionContext, plan: RetentionPlan, audit: AuditLog, actor: Caller) -> None:
    for old_run_id in plan.runs:
        context.instance.delete_run(old_run_id)
        detail = f"Dagster run {old_run_id} and its event log (created before {plan.cutoff})"
        audit.append(AuditEvent(RETENTION_DELETE, DONE, detail=detail, run_id=context.run_id), actor)
