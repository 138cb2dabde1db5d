"""What the retention policy lets go on a given day: files, warehouse rows and Dagster runs older than the
retention period: by the day in each file name, each table's partition_date, and each run's creation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from dagster import DagsterInstance, RunsFilter

from esg_assets.core.file_names import day_of_file_name
from esg_assets.core.partitions import JOB_TIMEZONE
from esg_assets.core.settings import RETENTION_DAYS, RETENTION_MIN_DAYS
from esg_assets.defs.daily_ratings.daily_runs import FINISHED
from esg_assets.lib.report_store.store import ReportStore
from esg_assets.lib.warehouse.shard_stores import stores_before


@dataclass(frozen=True)
class RetentionPlan:
    """Everything of a day before ``cutoff`` goes: files by name, row counts by table, run ids."""

    cutoff: date
    files: Sequence[str]
    warehouse_rows: Mapping[str, int]
    runs: Sequence[str]
    shard_stores: Sequence[Path] = ()  # stores a dead run of an old day left beside the warehouse

    @property
    def empty(self) -> bool:
        return not (self.files or any(self.warehouse_rows.values()) or self.runs or self.shard_stores)


def retention_cutoff(today: date, retention_days: int) -> date:
    """The first day still kept: ``retention_days`` before ``today`` (2555 days: seven years)."""
    if retention_days < 1:
        raise ValueError(f"the retention period must be at least one day, got {retention_days}")
    return today - timedelta(days=retention_days)


def retention_refusals(today: date, current_day: date, retention_days: int, floor_days: int) -> list[str]:
    """Why a real (not dry) run must not go ahead, as of ``today`` when the clock says ``current_day``.

    A ``today`` in the future, or a period below the floor, would delete what the policy still keeps (with
    ``today: 2099-01-01`` every file, row and run), and a deletion cannot be undone.
    """
    refusals = []
    if today > current_day:
        refusals.append(
            f"today {today} is later than the current date in {JOB_TIMEZONE} ({current_day}): a real run "
            "applies the policy as of today or an earlier day, never a future one (a dry run may)"
        )
    if retention_days < floor_days:
        refusals.append(
            f"the retention period is {retention_days} days, below the floor of {floor_days} days "
            f"({RETENTION_MIN_DAYS.name}): set {RETENTION_DAYS.name} to at least {floor_days}"
        )
    return refusals


def plan_retention(
    store: ReportStore,
    connection: duckdb.DuckDBPyConnection,
    instance: DagsterInstance,
    cutoff: date,
    current_run_id: str | None = None,
    warehouse: Path | None = None,
) -> RetentionPlan:
    return RetentionPlan(
        cutoff=cutoff,
        files=expired_files(store, cutoff),
        warehouse_rows=expired_rows(connection, cutoff),
        runs=expired_runs(instance, cutoff, current_run_id),
        shard_stores=stores_before(warehouse, cutoff) if warehouse is not None else (),
    )


def expired_files(store: ReportStore, cutoff: date) -> list[str]:
    """Files of the day (ratings, error logs, manifests, summaries) dated before ``cutoff``; nothing else."""
    return [name for name in store.list() if (day := day_of_file_name(name)) is not None and day < cutoff]


def partitioned_tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Every warehouse table keyed by partition_date, from the catalog, so that a new one is covered too."""
    rows = connection.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE column_name = 'partition_date' AND table_schema = 'main' "
        "AND table_catalog = current_database() "
        "ORDER BY table_name"
    ).fetchall()
    return [name for (name,) in rows]


def expired_rows(connection: duckdb.DuckDBPyConnection, cutoff: date) -> dict[str, int]:
    return {
        table: connection.execute(
            f'SELECT count(*) FROM "{table}" WHERE partition_date < ?', [cutoff]
        ).fetchone()[0]
        for table in partitioned_tables(connection)
    }


def expired_runs(instance: DagsterInstance, cutoff: date, current_run_id: str | None = None) -> list[str]:
    """Finished runs created before the cutoff day began (Central time), whatever their job."""
    # In UTC: run storage drops the time zone of this filter and compares with its own UTC timestamps.
    created_before = datetime.combine(cutoff, time(0), ZoneInfo(JOB_TIMEZONE)).astimezone(UTC)
    records = instance.get_run_records(RunsFilter(created_before=created_before, statuses=list(FINISHED)))
    return [record.dagster_run.run_id for record in records if record.dagster_run.run_id != current_run_id]
