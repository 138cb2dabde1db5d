"""Which runs are runs of the day's graph, found by partition, whatever job launched them."""

from __future__ import annotations

from collections.abc import Iterable

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRecord,
    RunsFilter,
)

from esg_assets.core.keys import DAILY_ASSETS, DAILY_JOB_NAME, PARTITION_TAG, RATINGS_FILE

DAILY_ASSET_KEYS = frozenset(DAILY_ASSETS)

IN_PROGRESS = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
)
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def partition_of(run: DagsterRun) -> str | None:
    return run.tags.get(PARTITION_TAG)


def planned_assets(instance: DagsterInstance, run: DagsterRun) -> frozenset[AssetKey]:
    """The assets the run set out to materialize (recorded when the run was created)."""
    if run.asset_selection:
        return frozenset(run.asset_selection)
    # Runs of `materialize()` and some launch paths carry no asset_selection; the planned events always exist.
    events = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return frozenset(
        e.dagster_event.asset_key for e in events if e.dagster_event and e.dagster_event.asset_key
    )


def is_daily_run(instance: DagsterInstance, run: DagsterRun) -> bool:
    """A run of one day of the graph: the daily job, or any run (the UI's or `dagster asset materialize`'s
    ``__ASSET_JOB``, a backfill) that materializes the daily assets for one partition."""
    if partition_of(run) is None:
        return False
    return run.job_name == DAILY_JOB_NAME or bool(planned_assets(instance, run) & DAILY_ASSET_KEYS)


def publishes_file(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Whether the run materializes the day's ratings file (the deliverable), not only a part of the graph."""
    return RATINGS_FILE in planned_assets(instance, run)


def daily_runs_of(
    instance: DagsterInstance, partition: str, statuses: Iterable[DagsterRunStatus] | None = None
) -> list[RunRecord]:
    """The day's runs of the graph, newest first."""
    records = instance.get_run_records(
        RunsFilter(tags={PARTITION_TAG: partition}, statuses=list(statuses) if statuses else None)
    )
    return [record for record in records if is_daily_run(instance, record.dagster_run)]
