"""The RunMetrics of a finished daily run, read back from its events in the instance, and their push.

Read from the run's materializations (``esg_ratings`` carries the counts and API usage, ``ratings_file`` the
published file's size), never from DuckDB or the store: the warehouse allows one writer, and this runs in the
code server, beside the next run.
"""

from __future__ import annotations

import logging

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from esg_assets.core import settings
from esg_assets.core.partitions import PARTITION_TAG
from esg_assets.defs.daily_ratings.job import DAILY_JOB_NAME
from esg_assets.lib.pushgateway.metrics import RunMetrics, push_run_metrics
from esg_assets.core.ratings.model import ProcessingStatus

logger = logging.getLogger(__name__)


def run_metrics_of(instance: DagsterInstance, run: DagsterRun) -> RunMetrics:
    """What the run did, from its record (timing) and its materialization metadata (counts, requests)."""
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None
    duration = (ended - started) if started is not None and ended is not None else 0.0
    materialized = _materialization_metadata(instance, run.run_id)
    ratings = materialized.get("esg_ratings", {})
    counts = {status.value: int(ratings.get(status.value.lower(), 0)) for status in ProcessingStatus}
    total = sum(counts.values())
    fetched, fetch_seconds = ratings.get("fetched_this_run", 0), ratings.get("fetch_seconds", 0)
    success = run.status == DagsterRunStatus.SUCCESS
    return RunMetrics(
        duration_seconds=float(duration),
        accounts_by_status=counts if ratings else {},
        failure_rate=counts[ProcessingStatus.FAILED.value] / total if total else 0.0,
        api_requests=int(ratings.get("api_requests", 0)),
        retries=int(ratings.get("retries", 0)),
        throttled_429=int(ratings.get("throttled_429", 0)),
        not_modified_304=int(ratings.get("not_modified_304", 0)),
        throughput_per_second=fetched / fetch_seconds if fetch_seconds else 0.0,
        file_size_bytes=_file_size(materialized.get("ratings_file")),
        success=success,
        last_success_timestamp=ended if success else None,
    )


def push_metrics_of_run(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Pushes the run's metrics to ESG_PUSHGATEWAY_URL under the daily job and the run's partition.

    Every daily run (the schedule's, the UI's, `dagster asset materialize`) is grouped under ``esg_daily_job``,
    so a day has one set of series whatever launched it. False (logged) when not pushed, e.g. no URL is set.
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
            "counts": {**metrics.accounts_by_status, "api_requests": metrics.api_requests},
            "duration_seconds": round(metrics.duration_seconds, 1),
        },
    )
    return push_run_metrics(settings.PUSHGATEWAY_URL.value(), DAILY_JOB_NAME, partition, metrics)


def _materialization_metadata(instance: DagsterInstance, run_id: str) -> dict[str, dict]:
    """Asset name -> its numeric metadata, for the assets the run materialized."""
    metadata: dict[str, dict] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        values = {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}
        metadata[materialization.asset_key.to_user_string()] = {
            name: value for name, value in values.items() if isinstance(value, (int, float))
        }
    return metadata


def _file_size(ratings_file: dict | None) -> int:
    """The published file's size from ratings_file's metadata (``size_bytes``); 0 when this run published none."""
    return int(ratings_file.get("size_bytes", 0)) if ratings_file else 0
