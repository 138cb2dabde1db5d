"""A run of a day's ``esg_ratings`` held in progress, and the progress reports its fetch would write.

The pace sensors read the reports ``esg_ratings`` writes every 10 seconds; a test writes them with the job's
own writer (``report_progress``) at the times of its clock, for a real run that stays STARTED until the test
lets it go; with several shards, each shard's reports interleaved in time. The stand-ins' partitions reach a
few days ahead, so a day whose 09:00 deadline is still ahead of the wall clock can be used whatever the time
the suite runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    MaterializeResult,
    RunsFilter,
    asset,
    materialize,
)

from esg_assets.core.keys import ESG_RATINGS, PARTITION_TAG, RATINGS_FILE
from esg_assets.core.partitions import JOB_TIMEZONE
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.daily_ratings.fetch_progress import report_progress

DAYS_AHEAD = DailyPartitionsDefinition(start_date="2026-01-01", timezone=JOB_TIMEZONE, end_offset=5)
_WAIT_SECONDS = 60  # an upper bound for a busy machine, never a measure of speed


@contextmanager
def run_in_progress(instance: DagsterInstance, partition: str, tags: dict | None = None) -> Iterator[str]:
    """A run of ``partition``'s esg_ratings (a stand-in) that stays STARTED during the block; its id."""
    release = threading.Event()

    @asset(key=ESG_RATINGS, partitions_def=DAYS_AHEAD)
    def esg_ratings() -> None:
        release.wait(_WAIT_SECONDS)

    runner = threading.Thread(
        target=materialize,
        args=([esg_ratings],),
        kwargs={"partition_key": partition, "instance": instance, "tags": tags},
    )
    runner.start()
    try:
        yield _started_run(instance, partition)
    finally:
        release.set()
        runner.join(_WAIT_SECONDS)


def publish_day(instance: DagsterInstance, partition: str) -> None:
    """A successful run of the day that publishes its file (a stand-in ``ratings_file``)."""

    @asset(key=RATINGS_FILE, partitions_def=DAYS_AHEAD)
    def ratings_file() -> MaterializeResult:
        return MaterializeResult()

    assert materialize([ratings_file], partition_key=partition, instance=instance).success


def report_pace(
    instance: DagsterInstance,
    partition: str,
    run_id: str,
    *,
    run_started_at: datetime,
    to_fetch: int,
    rate_limit: float,
    per_second: float,
    seconds: int,
    throttled_share: float = 0.0,
    after: int = 0,
    every: int = 10,
) -> RatingsProgressMetadata:
    """Writes the reports of a fetch that started a minute after the run and went ``per_second`` accounts a
    second for ``seconds``, with ``throttled_share`` of its requests answered 429; returns the last.

    ``after``: the reports up to that many seconds were written already (the fetch goes on)."""
    reports = pace_reports(
        run_id,
        run_started_at=run_started_at,
        to_fetch=to_fetch,
        rate_limit=rate_limit,
        per_second=per_second,
        seconds=seconds,
        throttled_share=throttled_share,
        after=after,
        every=every,
    )
    for report in reports:
        report_progress(instance, partition, report)
    return reports[-1] if reports else RatingsProgressMetadata()


def pace_reports(
    run_id: str,
    *,
    run_started_at: datetime,
    to_fetch: int,
    rate_limit: float,
    per_second: float,
    seconds: int,
    throttled_share: float = 0.0,
    after: int = 0,
    every: int = 10,
    shard: int = 1,
    shards: int = 1,
    starts_after: int = 60,
) -> list[RatingsProgressMetadata]:
    """The reports ``report_pace`` writes, of shard ``shard`` of ``shards``; its fetch starts ``starts_after``
    seconds after the run."""
    fetch_started_at = run_started_at.timestamp() + starts_after
    reports = []
    for elapsed in range(after + every, seconds + 1, every):
        done = min(round(per_second * elapsed), to_fetch)
        requests = round(done / (1 - throttled_share))
        reports.append(
            RatingsProgressMetadata(
                run_id=run_id,
                shard=shard,
                shards=shards,
                done=done,
                to_fetch=to_fetch,
                requests=requests,
                throttled_429=requests - done,
                elapsed_seconds=float(elapsed),
                fetch_started_at=fetch_started_at,
                run_started_at=run_started_at.timestamp(),
                rate_limit_per_second=rate_limit,
            )
        )
    return reports


def report_shards(instance: DagsterInstance, partition: str, *shards: list[RatingsProgressMetadata]) -> None:
    """Writes several shards' reports (``pace_reports``) interleaved in time, as their steps would."""
    for report in sorted((report for reports in shards for report in reports), key=lambda r: r.observed_at):
        report_progress(instance, partition, report)


def _started_run(instance: DagsterInstance, partition: str) -> str:
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        records = instance.get_run_records(
            RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={PARTITION_TAG: partition}), limit=1
        )
        if records:
            return records[0].dagster_run.run_id
        time.sleep(0.05)
    raise AssertionError(f"the run of {partition} never started")


# When the first shard of the reports below started fetching (a pure function needs no real run).
SHARD_FETCH_START = datetime(2026, 11, 20, 11, 0, tzinfo=timezone.utc).timestamp()


def shard_report(
    shard: int, elapsed: float, done: int, to_fetch: int = 1000, shards: int = 2, late: float = 0
) -> RatingsProgressMetadata:
    """Shard ``shard``'s report at ``elapsed`` seconds of its fetch, which started ``late`` seconds after
    the first shard's (at SHARD_FETCH_START), with a share of 5 requests a second."""
    return RatingsProgressMetadata(
        run_id="r",
        shard=shard,
        shards=shards,
        done=done,
        to_fetch=to_fetch,
        requests=done,
        elapsed_seconds=elapsed,
        fetch_started_at=SHARD_FETCH_START + late,
        rate_limit_per_second=5,
    )
