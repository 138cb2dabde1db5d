"""A run's fetch shard by shard: its progress reports grouped by the shard that wrote them.

With ``ESG_SHARDS`` above 1 each shard's step reports its own progress (``RatingsProgressMetadata.shard`` of
``shards``), interleaved in the instance; each shard's reports are one series for ``fetch_pace``. Reports
written before shards existed read as shard 1 of 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from esg_assets.core.run_metadata import RatingsProgressMetadata


@dataclass(frozen=True)
class ShardFetch:
    """One shard of a run's fetch and its reports, oldest first; none when it has not started."""

    shard: int
    shards: int
    progress: tuple[RatingsProgressMetadata, ...]

    @property
    def label(self) -> str:
        return f"shard {self.shard} of {self.shards}"

    @property
    def started(self) -> bool:
        return bool(self.progress)

    @property
    def latest(self) -> RatingsProgressMetadata:
        return self.progress[-1]

    @property
    def is_over(self) -> bool:
        """Its last report has every account of the shard done."""
        return self.started and fetch_is_over(self.latest)

    @property
    def is_fetching(self) -> bool:
        return self.started and not self.is_over


def fetch_is_over(report: RatingsProgressMetadata) -> bool:
    """The report is the last of its shard's fetch: every account it had to fetch is done."""
    return report.done >= report.to_fetch


def shard_count(progress: Sequence[RatingsProgressMetadata]) -> int:
    """How many shards the run fetches in, as its reports say (1 for reports without shard fields)."""
    return max((max(report.shards, report.shard) for report in progress), default=1)


def shards_of(progress: Sequence[RatingsProgressMetadata]) -> list[ShardFetch]:
    """Every shard the run's reports announce, in order, each with its own reports (oldest first)."""
    count = shard_count(progress)
    groups: dict[int, list[RatingsProgressMetadata]] = {shard: [] for shard in range(1, count + 1)}
    for report in progress:
        groups.setdefault(report.shard, []).append(report)
    return [ShardFetch(shard, count, tuple(reports)) for shard, reports in sorted(groups.items())]


def run_is_fetching(progress: Sequence[RatingsProgressMetadata]) -> bool:
    """There are reports, and a shard is fetching or has not started (the run waits for every shard)."""
    return bool(progress) and not all(shard.is_over for shard in shards_of(progress))
