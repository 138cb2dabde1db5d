"""Run metrics of one day's run, pushed to a Prometheus Pushgateway; a failed push never fails the job.

Pushed with ``pushadd_to_gateway`` (HTTP POST) under the grouping key job + partition: POST replaces each
pushed metric family of the group as a whole, but keeps families this push leaves out. A failed re-run of a
day that once succeeded therefore keeps that day's ``esg_ratings_last_success_timestamp_seconds``, where a
PUT (``push_to_gateway``) would delete it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from dagster import ConfigurableResource
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from esg_assets.core import settings
from esg_assets.core.setting_values import flag, http_url, setting_check
from esg_assets.core.transport_security import require_secure_url

logger = logging.getLogger(__name__)

PREFIX = "esg_ratings_"


@dataclass(frozen=True)
class RunMetrics:
    """What one run of the daily job did, in numbers."""

    duration_seconds: float
    accounts_by_status: Mapping[str, int]  # Processing Status ("Successful", "Partial", "Failed") -> count
    failure_rate: float  # Failed accounts / all accounts, 0..1
    api_requests: int
    retries: int
    throttled_429: int
    not_modified_304: int
    throughput_per_second: float  # accounts rated per second of the run
    file_size_bytes: int
    success: bool
    last_success_timestamp: float | None = None  # Unix time the run ended (default: now); unused on failure
    # The run worker's resource use as its last step measured it (core/run_metadata.py ResourceFigures).
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    warehouse_size_bytes: int = 0
    spill_bytes: int = 0


class PushgatewayResource(ConfigurableResource):
    """The Prometheus Pushgateway of run metrics (ESG_PUSHGATEWAY_URL); empty: metrics are not pushed."""

    url: str = ""
    allow_insecure_http: str = "false"  # ESG_ALLOW_INSECURE_HTTP; text, as Dagster has no boolean EnvVar
    timeout_seconds: float = 10.0

    _url = setting_check("url", settings.PUSHGATEWAY_URL, http_url, optional=True)
    _insecure = setting_check("allow_insecure_http", settings.ALLOW_INSECURE_HTTP, flag)

    def push(self, job: str, partition: str, metrics: RunMetrics) -> bool:
        """Pushes ``metrics`` for ``job`` and ``partition``; True when pushed, False (logged) when not."""
        return push_run_metrics(
            self.url, job, partition, metrics, flag(settings.ALLOW_INSECURE_HTTP, self.allow_insecure_http),
            self.timeout_seconds,
        )  # fmt: skip


def push_run_metrics(
    pushgateway_url: str,
    job: str,
    partition: str,
    metrics: RunMetrics,
    allow_insecure_http: bool = False,
    timeout_seconds: float = 10.0,
) -> bool:
    """Pushes ``metrics`` for ``job`` and ``partition``; True when pushed, False (logged) when not."""
    if not pushgateway_url:
        logger.debug("no Pushgateway configured, run metrics not pushed", extra={"event": "metrics_skipped"})
        return False
    registry = _registry_of(metrics)
    try:
        require_secure_url(settings.PUSHGATEWAY_URL.name, pushgateway_url, allow_insecure_http)
        pushadd_to_gateway(
            pushgateway_url,
            job=job,
            registry=registry,
            grouping_key={"partition": partition},
            timeout=timeout_seconds,
        )
    except Exception as exc:  # any failure (refused, timeout, 4xx/5xx): metrics must never fail the job
        logger.warning(
            "run metrics not pushed to the Pushgateway: %s: %s",
            type(exc).__name__,
            exc,
            extra={"event": "metrics_push_failed", "partition": partition},
        )
        return False
    logger.info("run metrics pushed", extra={"event": "metrics_pushed", "partition": partition})
    return True


def _registry_of(metrics: RunMetrics) -> CollectorRegistry:
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value: float) -> None:
        Gauge(PREFIX + name, documentation, registry=registry).set(value)

    gauge("run_duration_seconds", "Wall-clock duration of the run.", metrics.duration_seconds)
    accounts = Gauge(PREFIX + "accounts", "Accounts by Processing Status.", ["status"], registry=registry)
    for status, count in metrics.accounts_by_status.items():
        accounts.labels(status=status).set(count)
    gauge("failure_rate", "Share of accounts whose status is Failed (0..1).", metrics.failure_rate)
    gauge("api_requests", "ESG API requests sent by the run.", metrics.api_requests)
    gauge("api_retries", "ESG API requests that were retries.", metrics.retries)
    gauge("api_throttled_429", "ESG API responses 429 Too Many Requests.", metrics.throttled_429)
    gauge("api_not_modified_304", "ESG API responses 304 Not Modified.", metrics.not_modified_304)
    gauge("throughput_per_second", "Accounts rated per second of the run.", metrics.throughput_per_second)
    gauge("file_size_bytes", "Size of the published ratings file.", metrics.file_size_bytes)
    gauge("cpu_seconds", "User + system CPU seconds of the run worker process.", metrics.cpu_seconds)
    gauge("peak_rss_bytes", "Peak resident memory of the run worker process.", metrics.peak_rss_bytes)
    gauge(
        "warehouse_size_bytes",
        "Size of the DuckDB warehouse file after the run.",
        metrics.warehouse_size_bytes,
    )
    gauge("spill_bytes", "Largest size of DuckDB's spill directory seen by the run.", metrics.spill_bytes)
    gauge("run_success", "1 when the run succeeded, 0 when it failed.", 1 if metrics.success else 0)
    if metrics.success:
        # Left out of a failed run's push so the gateway keeps the time of the day's last success.
        last_success = metrics.last_success_timestamp or time.time()
        gauge("last_success_timestamp_seconds", "Unix time the last successful run ended.", last_success)
    return registry
