"""Alerts when no run of the day exists by 05:00 Central plus the start grace (the schedule did not fire)."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from esg_assets.core.keys import PARTITION_TAG
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
    """Sends not_started for today (Central) when it is late and no run of the day has started executing;
    says what it did.

    A run waiting in the queue (behind a backfill, or a re-run holding the one run slot) or still starting
    does not count: that is the silent case this alert exists for, and it names what holds the slot. A run
    that started, or ended without starting (canceled, failed at launch), counts: those have alerts of their
    own.
    """
    day = central_day(now)
    partition = day.isoformat()
    due = late_start_after(day, window)
    if now < due:
        return f"{partition}: not due before {due.isoformat(timespec='minutes')}"
    runs = daily_runs_of(instance, partition)
    started = [record for record in runs if record.start_time is not None or record.dagster_run.is_finished]
    if started:
        return f"{partition}: {len(started)} run(s) of the day started"
    summary = f"no run of the day had started by {due:%H:%M} Central (scheduled {SCHEDULED_START:%H:%M})"
    details: dict[str, int | str] = {
        "scheduled_start": f"{SCHEDULED_START:%H:%M} Central",
        "grace_minutes": window.start_grace_minutes,
        "checked_at": now.astimezone(CENTRAL).isoformat(timespec="seconds"),
        "runs_of_day": len(runs),
        "waiting_runs_of_day": len(runs),
    }
    if runs:
        waiting = runs[-1].dagster_run  # newest first: the oldest is the one the schedule queued
        summary += f"; run {waiting.run_id} of the day is {waiting.status.value}"
        details["waiting_run_id"] = waiting.run_id
    holder = _run_in_the_slot(instance)
    if holder is not None:
        minutes = _minutes_since(holder, now)
        summary += (
            f", behind run {holder.dagster_run.run_id} ({_described(holder)}) running for {minutes} min"
        )
        details.update(
            blocking_run_id=holder.dagster_run.run_id,
            blocking_job=holder.dagster_run.job_name,
            blocking_partition=holder.dagster_run.tags.get(PARTITION_TAG, "none"),
            blocking_minutes=minutes,
        )
    elif runs:
        summary += ", with no run in progress to wait for: is dagster-daemon running?"
    alert = trigger(NOT_STARTED, partition, summary, details, runs[-1].dagster_run.run_id if runs else None)
    sent = ledger.send_once(alert)
    return f"{alert.dedup_key}: {'sent' if sent else 'already sent'}"


def _run_in_the_slot(instance: DagsterInstance) -> RunRecord | None:
    """The oldest run of any job that is executing now: what a queued run waits behind."""
    records = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]), limit=_SLOT_RUNS
    )
    return min(records, key=lambda record: record.create_timestamp, default=None)


def _minutes_since(record: RunRecord, now: datetime) -> int:
    began = (
        datetime.fromtimestamp(record.start_time, timezone.utc)
        if record.start_time
        else record.create_timestamp
    )
    return max(0, int((now - began).total_seconds() // 60))


def _described(record: RunRecord) -> str:
    run = record.dagster_run
    partition = run.tags.get(PARTITION_TAG)
    return f"{run.job_name}, {partition}" if partition else run.job_name


_SLOT_RUNS = 20


@sensor(
    name="esg_not_started_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="No run of today's partition executing by 05:00 Central + ESG_START_GRACE_MINUTES (a queued "
    "one does not count): alert not_started, naming what holds the run slot.",
)
def esg_not_started_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(alert_if_not_started(context.instance, ledger, utc_now(), alerting.window))
