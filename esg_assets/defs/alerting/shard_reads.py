"""What the pace sensors' reads of a sharded run's reports learned that later reads need not read again.

That a shard's fetch is over (and its last report), and "these shards had reported by storage id N", do not
change. Without them every 30-second tick would read back to a shard that ended hours ago, or to the run's
start for a shard not started: on SQLite, 4 hours into 2 shards, 0.3-1.1 s a sensor a tick against 20-160 ms
with them (2026-12-02, a shared 2-core machine under load). Only a saving: a read finds the same reports with
or without them, as each can be read again from the instance. Kept in the sensors' process for the last few
runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from esg_assets.core.run_metadata import RatingsProgressMetadata

_RUNS_KEPT = 32  # the runs fetching at once are a handful (fetching_runs reads at most 20)


@dataclass(frozen=True)
class ShardsRead:
    """Of one run: the last report of each shard whose fetch is over, and the shards that had reported when
    every report up to storage id ``upto`` had been read."""

    upto: int
    over: dict[int, RatingsProgressMetadata] = field(default_factory=dict)
    reported: frozenset[int] = frozenset()


class ShardReads:
    """The latest ``ShardsRead`` of each of the last few runs; safe to share between sensor threads."""

    def __init__(self, runs_kept: int = _RUNS_KEPT) -> None:
        self._runs_kept = runs_kept
        self._reads: dict[str, ShardsRead] = {}
        self._lock = threading.Lock()

    def recall(self, run_id: str) -> ShardsRead | None:
        with self._lock:
            return self._reads.get(run_id)

    def remember(self, run_id: str, read: ShardsRead) -> None:
        with self._lock:
            self._reads.pop(run_id, None)
            self._reads[run_id] = read
            while len(self._reads) > self._runs_kept:
                del self._reads[next(iter(self._reads))]


SHARD_READS = ShardReads()
