"""A run's progress reports grouped by the shard that wrote them: which fetch, are over, not started."""

from __future__ import annotations

import pytest

from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.fetch_shards import run_is_fetching, shards_of
from esg_assets_tests.support.fetching_run import shard_report as report

pytestmark = pytest.mark.unit


def test_interleaved_reports_are_grouped_by_shard_oldest_first_and_a_silent_shard_is_not_started():
    progress = [report(1, 10, 10, shards=3), report(2, 10, 40, shards=3), report(1, 20, 20, shards=3)]
    [first, second, third] = shards_of(progress)
    assert [r.done for r in first.progress] == [10, 20] and [r.done for r in second.progress] == [40]
    assert (third.label, third.started, third.is_fetching) == ("shard 3 of 3", False, False)


def test_reports_without_shard_fields_read_as_one_shard():
    old = RatingsProgressMetadata.from_metadata({"run_id": "r", "done": 5, "to_fetch": 10})
    [only] = shards_of([old])
    assert (only.shard, only.shards, only.label) == (1, 1, "shard 1 of 1")


def test_a_run_fetches_until_every_shard_is_over_and_waits_for_one_not_started():
    assert run_is_fetching([report(1, 10, 1000), report(2, 10, 999)])
    assert run_is_fetching([report(1, 10, 1000)])  # shard 2 has not started
    assert not run_is_fetching([report(1, 10, 1000), report(2, 20, 1000)])
    assert not run_is_fetching([])
