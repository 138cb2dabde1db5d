"""Reading a sharded run's progress reports: each shard's window, and what a read keeps for the next tick."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from dagster import instance_for_test

from esg_assets.defs.alerting.fetching_runs import progress_of
from esg_assets.defs.alerting.job_day import at_central, central_day, utc_now
from esg_assets.defs.alerting.shard_reads import ShardReads
from esg_assets_tests.support.fetching_run import pace_reports, report_shards, run_in_progress

pytestmark = pytest.mark.integration

DAY = central_day(utc_now()) + timedelta(days=2)
PARTITION = DAY.isoformat()
RUN_STARTED = at_central(DAY, 5, 0)


@pytest.fixture
def instance(tmp_path):
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def shard(run_id: str, number: int, seconds: int, to_fetch: int = 100_000, after: int = 0) -> list:
    return pace_reports(
        run_id,
        run_started_at=RUN_STARTED,
        to_fetch=to_fetch,
        rate_limit=25,
        per_second=20,
        seconds=seconds,
        after=after,
        shard=number,
        shards=3,
    )


def test_each_shard_keeps_its_window_a_shard_over_its_last_report_and_the_next_read_reads_the_same(instance):
    with run_in_progress(instance, PARTITION) as run_id:
        record = instance.get_run_record_by_id(run_id)
        # Shard 1 is over at 100 s (2,000 accounts at 20 a second), shard 2 fetches for 900 s, shard 3 has not
        # started.
        report_shards(instance, PARTITION, shard(run_id, 1, 100, to_fetch=2000), shard(run_id, 2, 900))
        reads = ShardReads()
        first = progress_of(instance, PARTITION, record, 300, reads)
        assert [(r.shard, r.elapsed_seconds) for r in first] == [(1, 100.0)] + [
            (2, float(elapsed)) for elapsed in range(600, 901, 10)
        ]
        learned = reads.recall(run_id)
        assert (set(learned.over), learned.reported) == ({1}, {1, 2})

        # The next tick; shard 1's step reports once more as it ends.
        report_shards(instance, PARTITION, shard(run_id, 1, 110, to_fetch=2000, after=100))
        report_shards(instance, PARTITION, shard(run_id, 2, 930, after=900))
        again = progress_of(instance, PARTITION, record, 300, reads)
        assert again == progress_of(instance, PARTITION, record, 300, ShardReads())
        assert [r.elapsed_seconds for r in again if r.shard == 1] == [110.0]
        assert [r.elapsed_seconds for r in again if r.shard == 2][0] == 630.0


def test_the_next_read_takes_a_shard_over_from_the_earlier_read_and_does_not_read_back_to_it(instance):
    with run_in_progress(instance, PARTITION) as run_id:
        record = instance.get_run_record_by_id(run_id)
        report_shards(instance, PARTITION, shard(run_id, 1, 100, to_fetch=2000), shard(run_id, 2, 900))
        reads = ShardReads()
        progress_of(instance, PARTITION, record, 300, reads)
        learned = reads.recall(run_id)
        # Were the next read to go back to shard 1's last report, it would find 2,000 accounts, not 7.
        marked = replace(learned.over[1], done=7, to_fetch=7)
        reads.remember(run_id, replace(learned, over={1: marked}))
        assert marked in progress_of(instance, PARTITION, record, 300, reads)


def test_the_next_read_stops_where_the_earlier_one_began_for_a_shard_not_started(instance, monkeypatch):
    with run_in_progress(instance, PARTITION) as run_id:
        record = instance.get_run_record_by_id(run_id)
        # Shards 1 and 2 fetch for 50 minutes (600 reports, pages of 100); shard 3 has not started.
        report_shards(instance, PARTITION, shard(run_id, 1, 3000), shard(run_id, 2, 3000))
        reads = ShardReads()
        assert (
            len(
                pages_read(instance, monkeypatch, lambda: progress_of(instance, PARTITION, record, 60, reads))
            )
            == 7
        )
        report_shards(
            instance, PARTITION, shard(run_id, 1, 3030, after=3000), shard(run_id, 2, 3030, after=3000)
        )
        pages = pages_read(instance, monkeypatch, lambda: progress_of(instance, PARTITION, record, 60, reads))
        assert len(pages) == 1  # its 6 new reports and the windows' 14 before them
        fresh = progress_of(instance, PARTITION, record, 60, ShardReads())
        assert progress_of(instance, PARTITION, record, 60, reads) == fresh


def pages_read(instance, monkeypatch, read) -> list[int]:
    """How many reports each page ``read()`` asked the instance for held (the real instance answers)."""
    pages: list[int] = []
    fetch = instance.fetch_observations

    def counted(*args, **kwargs):
        result = fetch(*args, **kwargs)
        pages.append(len(result.records))
        return result

    monkeypatch.setattr(instance, "fetch_observations", counted)
    read()
    monkeypatch.setattr(instance, "fetch_observations", fetch)
    return pages
