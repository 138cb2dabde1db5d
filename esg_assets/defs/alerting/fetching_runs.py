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
from esg_assets.defs.alerting.shard_reads import SHARD_READS, ShardReads, ShardsRead
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
    instance: DagsterInstance,
    partition: str,
    record: RunRecord,
    span_seconds: float,
    reads: ShardReads = SHARD_READS,
) -> list[RatingsProgressMetadata]:
    """The run's progress reports of each shard's last ``span_seconds`` of fetching, oldest first.

    Read newest first from the reports of the day written since the run started, a page at a time, and no
    further back than the windows need: a 4-hour fetch writes about 1,400 of them a shard. Of a shard whose
    fetch is over while others go on, only its last report is needed; to tell a shard not heard of (not
    started) the read goes back to the run's start, or to where an earlier read of the run went (``reads``).
    """
    started = record.start_time or record.create_timestamp.timestamp()
    run_id = record.dagster_run.run_id
    newest_first: list[RatingsProgressMetadata] = []
    windows = _Windows(span_seconds, reads.recall(run_id))
    newest_id: int | None = None
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
            newest_id = event.storage_id if newest_id is None else newest_id
            if windows.reached(event.storage_id):
                break
            observation = event.asset_observation
            report = RatingsProgressMetadata.from_metadata(observation.metadata if observation else {})
            if report.run_id != run_id or windows.recalled(report, event.storage_id):
                continue
            newest_first.append(report)
            if windows.covered_with(report):
                break
        else:
            if result.has_more:
                cursor = result.cursor
                continue
            windows.read_to_the_start()
        if newest_id is not None and windows.shards > 1:
            reads.remember(run_id, windows.learned(newest_id))
        return windows.trimmed(newest_first)


class _Windows:
    """Which shards' windows the reports read so far (newest first) cover, with what an earlier read of the
    run learned: a shard over is covered by its last report, and once the read reaches where the earlier one
    started, a shard that had not reported by then and has not since has not started."""

    def __init__(self, span_seconds: float, earlier: ShardsRead | None) -> None:
        self.span_seconds = span_seconds
        self.earlier = earlier
        self.recall = list(earlier.over.values()) if earlier else []
        self.newest: dict[int, RatingsProgressMetadata] = {report.shard: report for report in self.recall}
        self.covered: set[int] = set(self.newest)
        self.shards = shard_count(self.recall)
        self.not_started_known = False
        self.replaced: set[int] = set()

    def recalled(self, report: RatingsProgressMetadata, storage_id: int) -> bool:
        """The report is of a shard over that the earlier read has the last report of; one written since
        (a shard's step reports once more as it ends) takes that one's place."""
        if self.earlier is None or report.shard not in self.earlier.over:
            return False
        if storage_id > self.earlier.upto and report.shard not in self.replaced:
            self.replaced.add(report.shard)
            self.recall = [report if known.shard == report.shard else known for known in self.recall]
            self.newest[report.shard] = report
        return True

    def covered_with(self, report: RatingsProgressMetadata) -> bool:
        """Counts ``report`` (older than those before it); True once every shard of the run is covered."""
        newest = self.newest.setdefault(report.shard, report)
        self.shards = max(self.shards, shard_count([report]))
        if report.elapsed_seconds <= newest.elapsed_seconds - self.span_seconds or (
            self.shards > 1 and fetch_is_over(newest)
        ):
            self.covered.add(report.shard)
        return self.all_covered()

    def reached(self, storage_id: int) -> bool:
        """True when the read may stop at ``storage_id``: the earlier read had read from there back."""
        if self.earlier is None or storage_id > self.earlier.upto:
            return False
        if not self.not_started_known:
            self.not_started_known = True
            unheard = set(range(1, self.shards + 1)) - set(self.newest) - self.earlier.reported
            self.covered |= unheard
        return self.all_covered()

    def read_to_the_start(self) -> None:
        """Every report since the run started has been read: a shard not heard of has not started."""
        self.covered |= set(range(1, self.shards + 1)) - set(self.newest)
        self.not_started_known = True

    def trimmed(self, newest_first: list[RatingsProgressMetadata]) -> list[RatingsProgressMetadata]:
        """The reports each shard's window needs, oldest first: back to the latest at least ``span_seconds``
        before its newest (all when it is younger); of a shard over among several, its last alone. So a read
        that went further back for another shard, or one an earlier read spared, gives the same."""
        kept = []
        complete: set[int] = set()
        for report in newest_first:
            newest = self.newest[report.shard]
            if report.shard in complete:
                continue
            kept.append(report)
            if (self.shards > 1 and fetch_is_over(newest)) or (
                report.elapsed_seconds <= newest.elapsed_seconds - self.span_seconds
            ):
                complete.add(report.shard)
        return sorted(self.recall + kept[::-1], key=lambda report: (report.observed_at, report.shard))

    def all_covered(self) -> bool:
        return self.covered.issuperset(range(1, self.shards + 1))

    def learned(self, newest_id: int) -> ShardsRead:
        """What this read adds to the earlier one, as of the newest report it read."""
        over = {shard: report for shard, report in self.newest.items() if fetch_is_over(report)}
        # Valid as of ``newest_id``: the read went back to the earlier one's start or the run's, or stopped
        # earlier with every shard heard of.
        reported = frozenset(self.newest) | (self.earlier.reported if self.earlier else frozenset())
        return ShardsRead(newest_id, over, reported)
