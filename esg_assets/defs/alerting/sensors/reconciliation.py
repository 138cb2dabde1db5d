"""Alerts on a failed ``reconciliation`` check: sampled rows of the published file differ from the API now.

The check does not block (the file was already checked against the warehouse), so nothing else tells anyone.
Like the failure-rate sensor, every tick reads the recent days' daily runs' evaluations of the check; the
ledger sends a day's alert once.
"""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.core.keys import RECONCILIATION_CHECK
from esg_assets.core.run_metadata import ReconciliationMetadata
from esg_assets.defs.alerting.alert_kinds import RECONCILIATION, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.job_day import recent_days, utc_now
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.alerting.sensors.failure_rate import check_evaluation
from esg_assets.defs.daily_ratings.daily_runs import daily_runs_of
from esg_assets.lib.logs.run_logging import JobLogsResource


def alert_failed_reconciliation(instance: DagsterInstance, ledger: AlertLedger, now: datetime) -> str:
    """Sends reconciliation for each recent day with a run whose check failed; says what it did."""
    outcomes = []
    for day in recent_days(now, LOOKBACK_DAYS):
        partition = day.isoformat()
        for record in daily_runs_of(instance, partition):
            run_id = record.dagster_run.run_id
            evaluation = check_evaluation(instance, run_id, RECONCILIATION_CHECK)
            if evaluation is None or evaluation.passed:
                continue
            numbers = ReconciliationMetadata.from_metadata(evaluation.metadata or {})
            alert = trigger(
                RECONCILIATION,
                partition,
                f"{numbers.mismatches} of {numbers.compared} sampled accounts differ from the ESG API and "
                f"{numbers.not_refetched} could not be fetched again; the published file may be stale",
                {
                    "accounts_compared": numbers.compared,
                    "accounts_differing": numbers.mismatches,
                    "accounts_not_refetched": numbers.not_refetched,
                },
                run_id,
            )
            sent = ledger.send_once(alert)
            outcomes.append(f"{alert.dedup_key} {'sent' if sent else 'already sent'}")
            break  # one alert a day: the ledger would not send a second
    return "; ".join(outcomes) or "no failed reconciliation check"


@sensor(
    name="esg_reconciliation_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="A failed reconciliation check (sampled rows of the published file differ from the ESG API): "
    "alert reconciliation to dev, once per day.",
)
def esg_reconciliation_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    return SkipReason(
        alert_failed_reconciliation(context.instance, alerting.ledger(context.instance), utc_now())
    )
