"""The day's runs whose ``esg_ratings`` is fetching now, each with its recent progress reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from esg_assets.core.keys import ESG_RATINGS
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.fetch_shards import (
    ShardFetch,
    fetch_is_over,
    run_is_fetching,
    shard_count,
    shards_of,
)
from esg_assets.defs.daily_ratings.daily_runs import is_daily_run, partition_of

# Runs executing at once: one in the queue's slot, plus any `dagster asset materialize` outside it.
_EXECUTING_RUNS = 20
_PAGE = 100


@dataclass(frozen=True)
class FetchingRun:
    """A run of the day executing its fetch, and its progress reports (every shard's), oldest first."""

    record: RunRecord
    partition: str
    progress: list[RatingsProgressMetadata]

    @property
    def run_id(self) -> str:
        return self.record.dagster_run.run_id

    @property
    def shards(self) -> list[ShardFetch]:
        return shards_of(self.progress)


def fetching_runs(instance: DagsterInstance, days: Iterable[date], span_seconds: float) -> list[FetchingRun]:
    """The daily runs of ``days`` executing now whose reports say the fetch is not over: a shard is fetching
    or has not started.

    Each comes with each shard's reports of its last ``span_seconds`` of fetching at least (all of them when
    the fetch is younger), so a window of that length can be measured.
    """
    wanted = {day.isoformat() for day in days}
    records = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=_EXECUTING_RUNS)
    found = []
    for record in records:
        partition = partition_of(record.dagster_run)
        if partition not in wanted or not is_daily_run(instance, record.dagster_run):
            continue
        progress = progress_of(instance, partition, record, span_seconds)
        if run_is_fetching(progress):
            found.append(FetchingRun(record, partition, progress))
    return found


def progress_of(
    instance: DagsterInstance, partition: str, record: RunRecord, span_seconds: float
) -> list[RatingsProgressMetadata]:
    """The run's progress reports of each shard's last ``span_seconds`` of fetching, oldest first.

    Read newest first from the reports of the day written since the run started, a page at a time, and no
    further back than the windows need: a 4-hour fetch writes about 1,400 of them a shard. Of a shard whose
    fetch is over while others go on, only its last report is needed; a shard not heard of yet (not started)
    makes the read go back to the run's start.
    """
    started = record.start_time or record.create_timestamp.timestamp()
    run_id = record.dagster_run.run_id
    newest_first: list[RatingsProgressMetadata] = []
    window = _Windows(span_seconds)
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
            if window.covered_with(report):
                return newest_first[::-1]
        if not result.has_more:
            return newest_first[::-1]
        cursor = result.cursor


class _Windows:
    """Which shards' windows the reports read so far (newest first) cover."""

    def __init__(self, span_seconds: float) -> None:
        self.span_seconds = span_seconds
        self.newest: dict[int, RatingsProgressMetadata] = {}
        self.covered: set[int] = set()
        self.shards = 1

    def covered_with(self, report: RatingsProgressMetadata) -> bool:
        """Counts ``report`` (older than those before it); True once every shard of the run is covered."""
        newest = self.newest.setdefault(report.shard, report)
        self.shards = max(self.shards, shard_count([report]))
        if report.elapsed_seconds <= newest.elapsed_seconds - self.span_seconds or (
            self.shards > 1 and fetch_is_over(newest)
        ):
            self.covered.add(report.shard)
        return self.covered.issuperset(range(1, self.shards + 1))
