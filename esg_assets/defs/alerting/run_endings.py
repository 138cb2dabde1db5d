"""How a day's run ended badly, as an alert: a failure, the 4-hour limit, the 09:00 deadline or a cancel."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from dagster import MAX_RUNTIME_SECONDS_TAG, DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from esg_assets.core.redaction import redact_text
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import DEADLINE, MAX_RUNTIME, RUN_CANCELED, RUN_FAILURE, trigger
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.job_day import CENTRAL
from esg_assets.defs.daily_ratings.daily_runs import is_daily_run, partition_of
from esg_assets.defs.daily_ratings.day_run_lock import REFUSED_TAG

# Set by the deadline sensor before it cancels a run, so whoever hears the cancellation knows why.
TERMINATED_BY_TAG = "esg/terminated_by"
TERMINATION_REASON_TAG = "esg/termination_reason"
DEADLINE_TERMINATION = "deadline"

# Run monitoring writes "Canceling due to exceeding maximum runtime of N seconds." and then
# "Exceeded maximum runtime of N seconds."; the run can end CANCELED or FAILURE depending on which lands last.
_MAX_RUNTIME_MARKS = ("exceeded maximum runtime", "exceeding maximum runtime")

# Error texts can be long (stack traces, chained causes): the alert carries the first lines only.
_ERROR_LINES = 3
_ERROR_LINE_CHARS = 300
_SUMMARY_CHARS = 200


def run_ending_alert(instance: DagsterInstance, run: DagsterRun) -> Alert | None:
    """The alert for a daily run that ended FAILURE or CANCELED; None for any other status."""
    partition = partition_of(run)
    if partition is None or run.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        return None
    timing = _timing(instance, run)
    if run.tags.get(TERMINATED_BY_TAG) == DEADLINE_TERMINATION:
        reason = run.tags.get(TERMINATION_REASON_TAG, "the 09:00 Central deadline passed")
        return trigger(DEADLINE, partition, f"the run was terminated: {reason}", timing, run.run_id)
    ending_messages = _ending_messages(instance, run)
    if any(mark in message.lower() for message in ending_messages for mark in _MAX_RUNTIME_MARKS):
        limit = run.tags.get(MAX_RUNTIME_SECONDS_TAG, "")
        summary = f"the run was terminated by run monitoring after its maximum runtime of {limit} seconds"
        return trigger(MAX_RUNTIME, partition, summary, {**timing, "max_runtime_seconds": limit}, run.run_id)
    if run.status == DagsterRunStatus.CANCELED:
        reason = redact_text(_first_line(ending_messages[0])) if ending_messages else "canceled"
        return trigger(RUN_CANCELED, partition, f"the run was canceled: {reason}", timing, run.run_id)
    steps, error = _failure_summary(instance, run)
    where = f"in step {steps}" if steps else "before any step failed"
    summary = _truncate(f"the run failed {where}: {_first_line(error)}", _SUMMARY_CHARS)
    details = {**timing, "failed_steps": steps or "none", "error": error}
    return trigger(RUN_FAILURE, partition, summary, details, run.run_id)


def alert_on_run_ending(
    instance: DagsterInstance, ledger: AlertLedger, run_id: str, log: logging.Logger
) -> None:
    """What the failed-run and canceled-run sensors do with the run they heard of.

    Returns nothing on purpose: a run status sensor that returns a value stops reading the tick's other
    events. Raises ``AlertNotDelivered`` when no channel took the alert: the tick fails loudly and, because
    Dagster moves a run status sensor's cursor past the event anyway, ``esg_alert_retry`` delivers it later.
    """
    run = instance.get_run_by_id(run_id)  # fresh: the deadline tag and the final status may be newer
    if run is None or not is_daily_run(instance, run):
        log.info(f"run {run_id} is not a run of the daily ratings graph; no alert")
        return
    if REFUSED_TAG in run.tags:
        # Refused before its first step because another run of the day held it: that run carries the day.
        log.info(f"run {run_id} was refused, {run.tags[REFUSED_TAG]} held the day; no alert")
        return
    alert = run_ending_alert(instance, run)
    if alert is None:
        log.info(f"run {run_id} is {run.status.value}; no alert")
        return
    sent = ledger.send_once(alert)
    log.info(f"{alert.dedup_key}: {'sent' if sent else 'already sent earlier, not sent again'}")


def _failure_summary(instance: DagsterInstance, run: DagsterRun) -> tuple[str, str]:
    """The failed steps and the first lines of their errors, or of the run's failure when no step failed."""
    step_failures = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    errors = []
    for entry in step_failures:
        error = getattr(entry.dagster_event.event_specific_data, "error", None)
        errors.append(_error_text(error) if error else entry.dagster_event.message or "")
    if not errors:
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE):
            error = getattr(entry.dagster_event.event_specific_data, "error", None)
            errors.append(_error_text(error) if error else entry.dagster_event.message or "")
    steps = ", ".join(
        dict.fromkeys(e.dagster_event.step_key for e in step_failures if e.dagster_event.step_key)
    )
    return steps, _first_lines("\n".join(errors) or "no error recorded")


def _error_text(error) -> str:
    # The message and the messages of its causes, without stack traces: enough to recognise the error.
    # Dagster's own wrapper ("Error occurred while executing op ...") says nothing its cause does not.
    parts = []
    while error is not None:
        if not (error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None):
            parts.append(error.message.strip())
        error = error.cause
    return "\n".join(parts)


def _ending_messages(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    endings = {DagsterEventType.RUN_CANCELING, DagsterEventType.RUN_CANCELED, DagsterEventType.RUN_FAILURE}
    entries = instance.all_logs(run.run_id, of_type=endings)
    return [entry.dagster_event.message or "" for entry in entries if entry.dagster_event]


def _timing(instance: DagsterInstance, run: DagsterRun) -> dict[str, str | float]:
    record = instance.get_run_record_by_id(run.run_id)
    timing: dict[str, str | float] = {"status": run.status.value}
    if record is None or record.start_time is None:
        return {**timing, "started_at": "never started"}
    started = datetime.fromtimestamp(record.start_time, tz=timezone.utc)
    timing["started_at"] = _central(started)
    if record.end_time is not None:
        ended = datetime.fromtimestamp(record.end_time, tz=timezone.utc)
        timing["ended_at"] = _central(ended)
        timing["ran_minutes"] = round((ended - started).total_seconds() / 60, 1)
    return timing


def _central(moment: datetime) -> str:
    return moment.astimezone(CENTRAL).isoformat(timespec="seconds")


def _first_lines(text: str) -> str:
    lines = [line.strip() for line in redact_text(text).splitlines() if line.strip()]
    kept = [_truncate(line, _ERROR_LINE_CHARS) for line in lines[:_ERROR_LINES]]
    if len(lines) > _ERROR_LINES:
        kept.append(f"... {len(lines) - _ERROR_LINES} more lines in the run's event log")
    return "\n".join(kept)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text.strip() else "no message"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
