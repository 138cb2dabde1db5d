"""Alerts when no run of the day exists by 05:00 Central plus the start grace (the schedule did not fire)."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.defs.alerting.alert_kinds import NOT_STARTED, trigger
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.job_day import (
    CENTRAL,
    DEFAULT_WINDOW,
    SCHEDULED_START,
    JobWindow,
    central_day,
    late_start_after,
    utc_now,
)
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.daily_ratings.daily_runs import daily_runs_of
from esg_assets.lib.logs.run_logging import JobLogsResource


def alert_if_not_started(
    instance: DagsterInstance, ledger: AlertLedger, now: datetime, window: JobWindow = DEFAULT_WINDOW
) -> str:
    """Sends not_started for today (Central) when it is late and the day has no run at all; says what it did.

    Any run of the day counts, whatever its status or launcher: a queued run is the scheduler's business, and
    a failed or canceled one has its own alert.
    """
    day = central_day(now)
    partition = day.isoformat()
    due = late_start_after(day, window)
    if now < due:
        return f"{partition}: not due before {due.isoformat(timespec='minutes')}"
    runs = daily_runs_of(instance, partition)
    if runs:
        return f"{partition}: {len(runs)} run(s) of the day exist"
    alert = trigger(
        NOT_STARTED,
        partition,
        f"no run of the day had started by {due:%H:%M} Central (scheduled {SCHEDULED_START:%H:%M})",
        {
            "scheduled_start": f"{SCHEDULED_START:%H:%M} Central",
            "grace_minutes": window.start_grace_minutes,
            "checked_at": now.astimezone(CENTRAL).isoformat(timespec="seconds"),
            "runs_of_day": 0,
        },
    )
    sent = ledger.send_once(alert)
    return f"{alert.dedup_key}: {'sent' if sent else 'already sent'}"


@sensor(
    name="esg_not_started_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="No run of today's partition by 05:00 Central + ESG_START_GRACE_MINUTES: alert not_started.",
)
def esg_not_started_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(alert_if_not_started(context.instance, ledger, utc_now(), alerting.window))
