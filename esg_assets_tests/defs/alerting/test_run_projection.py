"""A run's end projected from each shard's pace: the latest shard's end, or none for a shard that has none."""

from __future__ import annotations

import pytest

from esg_assets.defs.alerting.fetch_pace import PaceThresholds
from esg_assets.defs.alerting.run_projection import project_run
from esg_assets_tests.support.fetching_run import SHARD_FETCH_START as START
from esg_assets_tests.support.fetching_run import shard_report as report

pytestmark = pytest.mark.unit

THRESHOLDS = PaceThresholds(warmup_seconds=60, throughput_seconds=600)


def test_the_run_ends_with_its_slowest_shard():
    # Shard 1: 1 a second, 880 left at 120 s; shard 2: 5 a second, 400 left at 120 s.
    projection = project_run([report(1, 120, 120), report(2, 120, 600)], THRESHOLDS)
    assert projection.slowest.fetch.shard == 1
    assert projection.end.timestamp() == START + 120 + 880
    assert projection.not_projected == [] and not projection.warming_up


def test_a_shard_that_fetches_nothing_is_the_slowest_and_the_run_never_ends():
    projection = project_run([report(1, 120, 120), report(2, 120, 0)], THRESHOLDS)
    assert (projection.slowest.fetch.shard, projection.end) == (2, None)


def test_a_shard_whose_fetch_is_over_projects_to_its_last_report():
    projection = project_run([report(1, 100, 1000), report(2, 120, 600)], THRESHOLDS)
    [over, fetching] = projection.shards
    assert over.end.timestamp() == START + 100
    assert projection.slowest is fetching


def test_shards_not_started_or_in_their_warm_up_are_not_projected_and_the_run_waits_for_the_warm_up():
    assert project_run([report(1, 50, 50, shards=3)], THRESHOLDS).warming_up
    projection = project_run(
        [report(1, 120, 120, shards=3), report(2, 30, 30, shards=3, late=90)], THRESHOLDS
    )
    assert not projection.warming_up
    assert [shard.why_not_projected for shard in projection.not_projected] == [
        "shard 2 of 3 is in its warm-up (30 s)",
        "shard 3 of 3 has not started",
    ]
    assert projection.slowest.fetch.shard == 1
