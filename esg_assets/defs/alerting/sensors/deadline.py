"""Terminates the day's run still going at the 09:00 Central deadline, whenever it started, and alerts."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.defs.alerting.alert_kinds import DEADLINE, trigger
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.job_day import (
    CENTRAL,
    DEFAULT_WINDOW,
    JobWindow,
    central_day,
    deadline_of,
    utc_now,
)
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.alerting.run_endings import (
    DEADLINE_TERMINATION,
    TERMINATED_BY_TAG,
    TERMINATION_REASON_TAG,
)
from esg_assets.defs.daily_ratings.daily_runs import IN_PROGRESS, daily_runs_of
from esg_assets.lib.logs.run_logging import JobLogsResource


class RunNotTerminated(RuntimeError):
    """The run coordinator could not cancel an overdue run: the tick fails and tries again."""


def enforce_deadline(
    instance: DagsterInstance, ledger: AlertLedger, now: datetime, window: JobWindow = DEFAULT_WINDOW
) -> str:
    """Cancels today's runs created before the deadline and still queued or running; alerts deadline once.

    A run created after the deadline is left alone: that is someone re-running the day on purpose.
    """
    day = central_day(now)
    partition = day.isoformat()
    deadline = deadline_of(day, window)
    if now < deadline:
        return f"{partition}: before the {deadline:%H:%M} Central deadline"
    overdue = [r for r in daily_runs_of(instance, partition, IN_PROGRESS) if r.create_timestamp < deadline]
    if not overdue:
        return f"{partition}: no run of the day still going from before the deadline"
    for record in overdue:
        run = record.dagster_run
        reason = f"still {run.status.value} at the {deadline:%H:%M} Central deadline of {partition}"
        # Tagged first, so the canceled-run sensor that hears the cancellation reports it as the deadline.
        instance.add_run_tags(
            run.run_id, {TERMINATED_BY_TAG: DEADLINE_TERMINATION, TERMINATION_REASON_TAG: reason}
        )
        if not instance.run_coordinator.cancel_run(run.run_id):
            raise RunNotTerminated(f"run {run.run_id} of {partition} could not be terminated at the deadline")
    first = overdue[-1]  # runs come newest first; the oldest is the day's scheduled run
    started = (
        datetime.fromtimestamp(first.start_time, CENTRAL).isoformat(timespec="seconds")
        if first.start_time
        else "not started"
    )
    alert = trigger(
        DEADLINE,
        partition,
        f"the run was terminated: still {first.dagster_run.status.value} at the {deadline:%H:%M} Central "
        "deadline",
        {
            "deadline": deadline.isoformat(timespec="minutes"),
            "runs_terminated": len(overdue),
            "status_at_deadline": first.dagster_run.status.value,
            "started_at": started,
        },
        first.dagster_run.run_id,
    )
    sent = ledger.send_once(alert)
    outcome = "sent" if sent else "already sent"
    return f"{len(overdue)} run(s) of {partition} terminated; {alert.dedup_key} {outcome}"


@sensor(
    name="esg_deadline",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="At ESG_DEADLINE_HOUR (09:00) Central, terminates today's run still queued or running and "
    "alerts deadline (business and dev).",
)
def esg_deadline(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(enforce_deadline(context.instance, ledger, utc_now(), alerting.window))
