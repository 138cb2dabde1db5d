"""Closes the day's open alerts once the day's latest run succeeded and published the file.

A plain sensor over the ledger rather than a success run-status sensor: it compares states (what is open, how
the day's latest run ended), so an alert sent after the good run was heard, or a resolve that could not be
delivered, is still closed on a later tick.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from dagster import (
    AssetCheckKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from esg_assets.core.keys import FAILURE_RATE_CHECK, RECONCILIATION_CHECK
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import (
    ALERT_KINDS,
    FAILURE_RATE,
    RECONCILIATION,
    RESOLVED_BY_A_GOOD_RUN,
    resolve,
)
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.job_day import recent_days, utc_now
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.alerting.sensors.failure_rate import check_evaluation
from esg_assets.defs.daily_ratings.daily_runs import FINISHED, daily_runs_of, publishes_file
from esg_assets.lib.logs.run_logging import JobLogsResource


def resolve_recovered_days(instance: DagsterInstance, ledger: AlertLedger, now: datetime) -> str:
    """Resolves each open alert of a day whose latest finished run succeeded and published the file.

    failure_rate and reconciliation are closed only when that run's own check of them passed.
    """
    open_by_day: dict[str, list[Alert]] = defaultdict(list)
    for alert in ledger.open_triggers(recent_days(now, LOOKBACK_DAYS)):
        open_by_day[alert.partition].append(alert)
    outcomes = []
    for partition, alerts in sorted(open_by_day.items()):
        good_run = _latest_run_if_good(instance, partition)
        if good_run is None:
            continue
        run_id = good_run.dagster_run.run_id
        checks_passed = {
            FAILURE_RATE: _passed(instance, run_id, FAILURE_RATE_CHECK),
            RECONCILIATION: _passed(instance, run_id, RECONCILIATION_CHECK),
        }
        for alert in alerts:
            kind = ALERT_KINDS[alert.kind]
            if kind in RESOLVED_BY_A_GOOD_RUN or checks_passed.get(kind, False):
                summary = f"resolved: run {run_id} of the day succeeded and published the file"
                ledger.send_once(resolve(kind, partition, summary, run_id))
                outcomes.append(f"esg-{partition}-{kind.name} resolved")
    return "; ".join(outcomes) or "nothing to resolve"


def _latest_run_if_good(instance: DagsterInstance, partition: str) -> RunRecord | None:
    """The day's latest finished run that (re)publishes the file, if it succeeded.

    Runs of only a part of the graph that leaves the file alone (the summary, say) say nothing about the file.
    """
    finished = [
        record
        for record in daily_runs_of(instance, partition, FINISHED)
        if publishes_file(instance, record.dagster_run)
    ]
    if not finished:
        return None
    latest = max(finished, key=lambda record: record.end_time or 0.0)
    return latest if latest.dagster_run.status == DagsterRunStatus.SUCCESS else None


def _passed(instance: DagsterInstance, run_id: str, check: AssetCheckKey) -> bool:
    """True only when the run evaluated ``check`` and it passed (a run may not include it)."""
    evaluation = check_evaluation(instance, run_id, check)
    return evaluation is not None and evaluation.passed


@sensor(
    name="esg_resolve_alerts",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends PagerDuty resolve events (and emails) for a day's open alerts once the day's latest "
    "run succeeded and published the file; failure_rate and reconciliation only if that run's check passed.",
)
def esg_resolve_alerts(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    return SkipReason(resolve_recovered_days(context.instance, alerting.ledger(context.instance), utc_now()))
