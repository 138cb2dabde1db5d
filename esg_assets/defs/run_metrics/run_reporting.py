"""The RunMetrics of a finished daily run, read back from its events in the instance, and their push.

Read from the run's materializations (``esg_ratings`` carries the counts and API usage, ``ratings_file`` the
published file's size, each step the run worker's resource figures as it measured them), never from DuckDB or
the store: the warehouse allows one writer, and this runs in the code server, beside the next run; and the
resource figures can only be measured inside the run worker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from esg_assets.core.keys import DAILY_JOB_NAME, ESG_RATINGS, PARTITION_TAG, RATINGS_FILE
from esg_assets.core.run_metadata import RatingsFileMetadata, RatingsMetadata, ResourceFigures
from esg_assets.lib.pushgateway.metrics import PushgatewayResource, RunMetrics

logger = logging.getLogger(__name__)


def run_metrics_of(instance: DagsterInstance, run: DagsterRun) -> RunMetrics:
    """What the run did, from its record (timing) and its materialization metadata (counts, requests)."""
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None
    duration = (ended - started) if started is not None and ended is not None else 0.0
    materialized = _materialization_metadata(instance, run.run_id)
    ratings = RatingsMetadata.from_metadata(materialized.get(ESG_RATINGS, {}))
    ratings_file = RatingsFileMetadata.from_metadata(materialized.get(RATINGS_FILE, {}))
    counts = ratings.by_status
    total = sum(counts.values())
    success = run.status == DagsterRunStatus.SUCCESS
    return RunMetrics(
        duration_seconds=float(duration),
        accounts_by_status=counts if ESG_RATINGS in materialized else {},
        failure_rate=ratings.failed / total if total else 0.0,
        api_requests=ratings.api_requests,
        retries=ratings.retries,
        throttled_429=ratings.throttled_429,
        not_modified_304=ratings.not_modified_304,
        throughput_per_second=ratings.fetched_this_run / ratings.fetch_seconds
        if ratings.fetch_seconds
        else 0.0,
        file_size_bytes=ratings_file.size_bytes,  # 0 when this run published no file
        success=success,
        last_success_timestamp=ended if success else None,
        **asdict(_last_resource_figures(instance, run.run_id)),
    )


def push_metrics_of_run(instance: DagsterInstance, run: DagsterRun, pushgateway: PushgatewayResource) -> bool:
    """Pushes a run's metrics to ``pushgateway`` (ESG_PUSHGATEWAY_URL) under the daily job and its partition.

    Every daily run (the schedule's, the UI's, `dagster asset materialize`) is grouped under
    ``esg_daily_job``, so a day has one set of series whatever launched it. False (logged) when not pushed,
    e.g. no URL is set.
    """
    partition = run.tags.get(PARTITION_TAG)
    if partition is None:
        return False
    metrics = run_metrics_of(instance, run)
    logger.info(
        "run %s of %s ended %s",
        run.run_id,
        partition,
        run.status.value,
        extra={
            "event": "run_finished",
            "run_id": run.run_id,
            "partition": partition,
            "status": run.status.value,
            "counts": {**metrics.accounts_by_status, "api_requests": metrics.api_requests},
            "duration_seconds": round(metrics.duration_seconds, 1),
        },
    )
    return pushgateway.push(DAILY_JOB_NAME, partition, metrics)


def _last_resource_figures(instance: DagsterInstance, run_id: str) -> ResourceFigures:
    """The figures of the run's last materialization that has them (run_history's, or the last step's before a
    failure); zeros when no step recorded any."""
    figures = ResourceFigures()
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        metadata = entry.dagster_event.event_specific_data.materialization.metadata
        if "cpu_seconds" in metadata:
            figures = ResourceFigures.from_metadata(metadata)
    return figures


def _materialization_metadata(instance: DagsterInstance, run_id: str) -> dict[AssetKey, Mapping[str, Any]]:
    """Asset key -> the metadata of its materialization in the run, for the assets the run materialized."""
    metadata: dict[AssetKey, Mapping[str, Any]] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        metadata[materialization.asset_key] = materialization.metadata
    return metadata
