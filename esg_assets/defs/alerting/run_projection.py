"""When a run's fetch ends: each shard projected from its own pace, the run at the latest of them (the merge
waits for every shard).

Pure functions of the run's progress reports (``fetch_shards``, ``fetch_pace``). A shard whose fetch is over
projects to its last report; one with no report has not started and one younger than the warm-up has no
representative pace yet: neither can be projected, so the run's end is then a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.fetch_pace import Pace, PaceThresholds, current_pace, projected_end
from esg_assets.defs.alerting.fetch_shards import ShardFetch, shards_of


@dataclass(frozen=True)
class ShardProjection:
    """One shard's projected end (None: it fetches nothing, so never), or why it has none."""

    fetch: ShardFetch
    projected: bool
    end: datetime | None = None
    pace: Pace | None = None

    @property
    def why_not_projected(self) -> str:
        if not self.fetch.started:
            return f"{self.fetch.label} has not started"
        return f"{self.fetch.label} is in its warm-up ({self.fetch.latest.elapsed_seconds:.0f} s)"


@dataclass(frozen=True)
class RunProjection:
    """The run's shards, projected or not; ``warming_up`` while no shard has fetched for the warm-up (the run
    is not projected at all then)."""

    shards: list[ShardProjection]
    warming_up: bool

    @property
    def slowest(self) -> ShardProjection:
        """The projected shard that ends last (one that fetches nothing first); the run ends with it."""
        projected = [shard for shard in self.shards if shard.projected]
        never = [shard for shard in projected if shard.end is None]
        return never[0] if never else max(projected, key=lambda shard: shard.end or datetime.max)

    @property
    def end(self) -> datetime | None:
        return self.slowest.end

    @property
    def not_projected(self) -> list[ShardProjection]:
        return [shard for shard in self.shards if not shard.projected]

    @property
    def started(self) -> list[ShardProjection]:
        return [shard for shard in self.shards if shard.fetch.started]

    @property
    def done(self) -> int:
        """The accounts the started shards have done."""
        return sum(shard.fetch.latest.done for shard in self.started)

    @property
    def to_fetch(self) -> int:
        """The accounts the started shards fetch (a shard not started has not said how many it has)."""
        return sum(shard.fetch.latest.to_fetch for shard in self.started)

    @property
    def accounts_per_second(self) -> float:
        """The shards' current paces together; a shard whose fetch is over adds nothing any more."""
        return sum(
            shard.pace.accounts_per_second
            for shard in self.shards
            if shard.pace is not None and not shard.fetch.is_over
        )

    @property
    def rate_limit_per_second(self) -> float:
        """The run's rate limit: the shards' equal shares together."""
        return max(shard.fetch.latest.rate_limit_per_second for shard in self.started) * len(self.shards)

    @property
    def longest_elapsed_seconds(self) -> float:
        """The time the run's longest-running shard has fetched."""
        return max(shard.fetch.latest.elapsed_seconds for shard in self.started)


def project_run(progress: Sequence[RatingsProgressMetadata], thresholds: PaceThresholds) -> RunProjection:
    """Each shard of the run projected from its pace over the last ``thresholds.throughput_seconds``, once it
    has fetched for ``thresholds.warmup_seconds``."""
    shards = [_project(shard, thresholds) for shard in shards_of(progress)]
    longest = max((report.elapsed_seconds for report in progress), default=0.0)
    return RunProjection(shards, warming_up=longest < thresholds.warmup_seconds)


def _project(shard: ShardFetch, thresholds: PaceThresholds) -> ShardProjection:
    if not shard.started:
        return ShardProjection(shard, projected=False)
    pace = current_pace(shard.progress, thresholds.throughput_seconds)
    if shard.is_over:
        ended = datetime.fromtimestamp(shard.latest.observed_at, timezone.utc)
        return ShardProjection(shard, projected=True, end=ended, pace=pace)
    if shard.latest.elapsed_seconds < thresholds.warmup_seconds:
        return ShardProjection(shard, projected=False, pace=pace)
    end = projected_end(shard.progress, thresholds.throughput_seconds)
    return ShardProjection(shard, projected=True, end=end, pace=pace)
