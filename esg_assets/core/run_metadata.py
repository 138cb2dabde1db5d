"""The metadata one part of the job reads from another's events, typed: what is written is what is read.

``esg_ratings`` writes ``RatingsMetadata`` and run reporting reads it back; ``ratings_file`` writes
``RatingsFileMetadata``; the ``failure_rate`` and ``reconciliation`` checks write ``FailureRateMetadata`` and
``ReconciliationMetadata``, and their alerts read them; ``esg_ratings``, ``ratings_file`` and ``run_history``
write ``ResourceFigures``, and run reporting pushes the last. While it fetches, ``esg_ratings`` reports
``RatingsProgressMetadata`` every progress interval, which the projected_late and degraded alerts read.
Each writer may add metadata of its own for the UI; only these fields are an interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

from esg_assets.core.ratings.model import ProcessingStatus


def _numbers_of(cls: type, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The dataclass's fields in ``metadata`` (Dagster's MetadataValue or plain), missing ones left out."""
    values = {name: getattr(value, "value", value) for name, value in metadata.items()}
    return {field.name: values[field.name] for field in fields(cls) if values.get(field.name) is not None}


class _Metadata:
    def to_metadata(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Self:
        """Read back from an event's metadata; a field an older run did not write is its default."""
        return cls(**_numbers_of(cls, metadata))


@dataclass(frozen=True)
class RatingsMetadata(_Metadata):
    """What ``esg_ratings`` did: the day's accounts by Processing Status and this run's use of the API."""

    accounts: int = 0
    successful: int = 0
    partial: int = 0
    failed: int = 0
    fetched_this_run: int = 0
    resumed_from_earlier_run: int = 0
    api_requests: int = 0
    retries: int = 0
    throttled_429: int = 0
    not_modified_304: int = 0
    requests_per_second: float = 0.0
    fetch_seconds: float = 0.0

    @property
    def by_status(self) -> dict[str, int]:
        return {
            ProcessingStatus.SUCCESSFUL.value: self.successful,
            ProcessingStatus.PARTIAL.value: self.partial,
            ProcessingStatus.FAILED.value: self.failed,
        }


@dataclass(frozen=True)
class RatingsFileMetadata(_Metadata):
    """The published ratings file: its rows and its size as stored (what run metrics report)."""

    rows: int = 0
    size_bytes: int = 0


@dataclass(frozen=True)
class ResourceFigures(_Metadata):
    """What the run worker (the process that runs the run's steps) used, as of the step that measured it.

    ``cpu_seconds``: its user + system CPU time (every thread, its start-up included); ``peak_rss_bytes``: its
    peak resident memory (``ru_maxrss``); ``warehouse_size_bytes``: the DuckDB file's size;
    ``spill_bytes``: the largest size of DuckDB's spill directory it saw (lib/warehouse/spill.py).
    """

    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    warehouse_size_bytes: int = 0
    spill_bytes: int = 0


@dataclass(frozen=True)
class FailureRateMetadata(_Metadata):
    """The ``failure_rate`` check's numbers: Failed accounts of all, their share, and the threshold."""

    failed: int = 0
    accounts: int = 0
    failure_rate: float = 0.0
    threshold: float = 0.0


@dataclass(frozen=True)
class ReconciliationMetadata(_Metadata):
    """The ``reconciliation`` check's numbers: sampled accounts compared, how many differ, how many the API
    did not answer again."""

    compared: int = 0
    mismatches: int = 0
    not_refetched: int = 0


@dataclass(frozen=True)
class RatingsProgressMetadata(_Metadata):
    """Where ``esg_ratings`` stands in its fetch: counters cumulative since the fetch started.

    Times are UTC seconds since the epoch. With several shards (ESG_SHARDS) each shard's step reports its own
    progress: ``shard`` (1-based) of ``shards``; counters, ``to_fetch`` and ``rate_limit_per_second`` (its
    share of ``ESG_RATE_LIMIT_PER_SECOND``, which its throughput is compared with) are the shard's.
    """

    run_id: str = ""
    shard: int = 1
    shards: int = 1
    done: int = 0
    to_fetch: int = 0
    requests: int = 0
    throttled_429: int = 0
    elapsed_seconds: float = 0.0
    fetch_started_at: float = 0.0
    run_started_at: float = 0.0
    rate_limit_per_second: float = 0.0

    @property
    def observed_at(self) -> float:
        return self.fetch_started_at + self.elapsed_seconds
