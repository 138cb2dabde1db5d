"""Delivers alerts that no channel took the first time, every tick, until one does (the ledger's outbox)."""

from __future__ import annotations

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS
from esg_assets.defs.alerting.job_day import recent_days, utc_now
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.lib.logs.run_logging import JobLogsResource


@sensor(
    name="esg_alert_retry",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retries alerts still pending in the ledger (no channel delivered them); the tick fails "
    "while one stays undelivered.",
)
def esg_alert_retry(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    delivered = ledger.retry_pending(recent_days(utc_now(), LOOKBACK_DAYS))
    return SkipReason(f"{delivered} pending alert(s) delivered" if delivered else "no pending alert")
