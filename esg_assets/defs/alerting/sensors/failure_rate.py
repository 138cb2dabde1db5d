"""Alerts on a failed ``failure_rate`` check: it does not block, so the run succeeds and nothing else pages.

Every tick looks at the daily runs of the ledger's lookback days and reads each one's check evaluation from
its event log (public ``instance.all_logs``); the ledger sends a day's failure_rate once. No cursor to get
wrong: a slow run's failure is found whenever its check is evaluated, whatever other runs finished first, and
an alert a tick could not deliver is found again.
"""

from __future__ import annotations

from datetime import datetime

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from esg_assets.core.keys import FAILURE_RATE_CHECK
from esg_assets.core.run_metadata import FailureRateMetadata
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import FAILURE_RATE, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.job_day import recent_days, utc_now
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.daily_ratings.daily_runs import daily_runs_of
from esg_assets.lib.logs.run_logging import JobLogsResource


def alert_failed_checks(instance: DagsterInstance, ledger: AlertLedger, now: datetime) -> str:
    """Sends failure_rate for each recent day with a run whose check failed; says what it did.

    Days older than the ledger's lookback are not looked at: enabling the sensor must not page for old
    history.
    """
    outcomes = []
    for day in recent_days(now, LOOKBACK_DAYS):
        partition = day.isoformat()
        for record in daily_runs_of(instance, partition):
            evaluation = failure_rate_evaluation(instance, record.dagster_run.run_id)
            if evaluation is None or evaluation.passed:
                continue
            alert = _alert_of(evaluation, partition, record.dagster_run.run_id)
            sent = ledger.send_once(alert)
            outcomes.append(f"{alert.dedup_key} {'sent' if sent else 'already sent'}")
            break  # one alert a day: the ledger would not send a second
    return "; ".join(outcomes) or "no failed failure_rate check"


def failure_rate_evaluation(instance: DagsterInstance, run_id: str) -> AssetCheckEvaluation | None:
    """The run's evaluation of the failure_rate check; None when the run has not evaluated it (yet)."""
    return check_evaluation(instance, run_id, FAILURE_RATE_CHECK)


def check_evaluation(
    instance: DagsterInstance, run_id: str, check: AssetCheckKey
) -> AssetCheckEvaluation | None:
    """The run's evaluation of ``check``; None when the run has not evaluated it (yet)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if isinstance(evaluation, AssetCheckEvaluation) and evaluation.asset_check_key == check:
            return evaluation
    return None


def _alert_of(evaluation: AssetCheckEvaluation, partition: str, run_id: str) -> Alert:
    """The alert with the check's own numbers (its metadata: failed, accounts, failure_rate, threshold)."""
    numbers = FailureRateMetadata.from_metadata(evaluation.metadata or {})
    failed, total, rate, threshold = numbers.failed, numbers.accounts, numbers.failure_rate, numbers.threshold
    return trigger(
        FAILURE_RATE,
        partition,
        f"{failed} of {total} accounts Failed ({rate:.2%}), above the {threshold:.2%} limit; "
        "the file was published with the failures marked",
        {"accounts_failed": failed, "accounts_total": total, "failure_rate": rate, "threshold": threshold},
        run_id,
    )


@sensor(
    name="esg_failure_rate_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="A failed failure_rate check (more than ESG_MAX_FAILURE_RATE of the accounts Failed): alert "
    "failure_rate to the business and dev. The check does not block, so the file is still published.",
)
def esg_failure_rate_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    return SkipReason(alert_failed_checks(context.instance, alerting.ledger(context.instance), utc_now()))
