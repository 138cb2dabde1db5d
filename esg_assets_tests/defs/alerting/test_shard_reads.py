"""What the pace sensors' reads keep of a sharded run for the next tick: the last few runs."""

from __future__ import annotations

import pytest

from esg_assets.defs.alerting.shard_reads import ShardReads, ShardsRead

pytestmark = pytest.mark.unit


def test_the_latest_read_of_a_run_replaces_the_earlier_and_runs_beyond_the_few_kept_are_forgotten():
    reads = ShardReads(runs_kept=2)
    assert reads.recall("a") is None
    for run, upto in (("a", 1), ("b", 2), ("a", 3), ("c", 4)):
        reads.remember(run, ShardsRead(upto=upto))
    assert (reads.recall("a").upto, reads.recall("b"), reads.recall("c").upto) == (3, None, 4)
