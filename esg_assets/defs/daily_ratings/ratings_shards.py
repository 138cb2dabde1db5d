"""The shards of a day's accounts: how many, which accounts each holds, and each one's share of the limits."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.setting_values import setting_check, whole_number

MAX_SHARDS = 64


@dataclass(frozen=True)
class Shard:
    """One shard of a day: the accounts whose id hashes to ``index`` among ``count`` (0-based)."""

    index: int
    count: int

    @property
    def label(self) -> str:
        """How logs, stores and the UI name it: ``1-of-2`` for the first of two."""
        return f"{self.index + 1}-of-{self.count}"

    @property
    def mapping_key(self) -> str:
        """The step's mapping key in Dagster (``esg_ratings.fetch_shard[shard_1_of_2]``)."""
        return f"shard_{self.index + 1}_of_{self.count}"

    def rate_share(self, rate_per_second: float) -> float:
        """This shard's requests a second: an equal share, so the shards together never pass the limit."""
        return rate_per_second / self.count

    def in_flight_share(self, max_in_flight: int) -> int:
        """This shard's requests in flight: an equal share, rounded down, at least one."""
        return max(1, max_in_flight // self.count)


class RatingsShardsResource(ConfigurableResource):
    """How many shards ``esg_ratings`` fetches the day in (ESG_SHARDS); docs/scaling.md."""

    shards: int = int(settings.SHARDS.default)  # type: ignore[arg-type]

    _shards = setting_check("shards", settings.SHARDS, whole_number, high=MAX_SHARDS)

    def of_day(self) -> list[Shard]:
        return [Shard(index, self.shards) for index in range(self.shards)]
