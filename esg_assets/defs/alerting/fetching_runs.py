"""The day's runs whose ``esg_ratings`` is fetching now, each with its recent progress reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from esg_assets.core.keys import ESG_RATINGS
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.fetch_pace import is_fetching
from esg_assets.defs.daily_ratings.daily_runs import is_daily_run, partition_of

# Runs executing at once: one in the queue's slot, plus any `dagster asset materialize` outside it.
_EXECUTING_RUNS = 20
_PAGE = 100


@dataclass(frozen=True)
class FetchingRun:
    """A run of the day executing its fetch, and its progress reports, oldest first."""

    record: RunRecord
    partition: str
    progress: list[RatingsProgressMetadata]

    @property
    def run_id(self) -> str:
        return self.record.dagster_run.run_id


def fetching_runs(instance: DagsterInstance, days: Iterable[date], span_seconds: float) -> list[FetchingRun]:
    """The daily runs of ``days`` executing now whose latest report says the fetch is not over.

    Each comes with its reports of the last ``span_seconds`` of fetching at least (all of them when the
    fetch is younger), so a window of that length can be measured.
    """
    wanted = {day.isoformat() for day in days}
    records = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=_EXECUTING_RUNS)
    found = []
    for record in records:
        partition = partition_of(record.dagster_run)
        if partition not in wanted or not is_daily_run(instance, record.dagster_run):
            continue
        progress = progress_of(instance, partition, record, span_seconds)
        if is_fetching(progress):
            found.append(FetchingRun(record, partition, progress))
    return found


def progress_of(
    instance: DagsterInstance, partition: str, record: RunRecord, span_seconds: float
) -> list[RatingsProgressMetadata]:
    """The run's progress reports of its last ``span_seconds`` of fetching, oldest first.

    Read newest first from the reports of the day written since the run started, a page at a time, and no
    further back than the window needs: a 4-hour fetch writes about 1,400 of them.
    """
    started = record.start_time or record.create_timestamp.timestamp()
    run_id = record.dagster_run.run_id
    newest_first: list[RatingsProgressMetadata] = []
    cursor = None
    while True:
        result = instance.fetch_observations(
            AssetRecordsFilter(
                asset_key=ESG_RATINGS, asset_partitions=[partition], after_timestamp=started - 1
            ),
            limit=_PAGE,
            cursor=cursor,
        )
        for event in result.records:
            observation = event.asset_observation
            report = RatingsProgressMetadata.from_metadata(observation.metadata if observation else {})
            if report.run_id != run_id:
                continue
            newest_first.append(report)
            if report.elapsed_seconds <= newest_first[0].elapsed_seconds - span_seconds:
                return newest_first[::-1]
        if not result.has_more:
            return newest_first[::-1]
        cursor = result.cursor
