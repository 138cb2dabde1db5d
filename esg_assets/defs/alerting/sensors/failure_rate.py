"""Alerts on a failed ``failure_rate`` check: the check does not block, so the run succeeds and nothing else pages.

Reads the check's execution records (``get_asset_check_execution_history``) with a cursor on the record id.
A record is created PLANNED when its run starts and turns FAILED later under the same id, so the cursor never
moves past a record whose run is still going: a slow run's failure is not skipped because a faster run of
another day finished first.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dagster import (
    AssetCheckKey,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.lib.logs.run_logging import configure_sensor_logging
from esg_assets.defs.quality.check_results import FAILURE_RATE_CHECK
from esg_assets.defs.alerting.alert_kinds import FAILURE_RATE, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger, alert_ledger_from_env
from esg_assets.defs.daily_ratings.daily_runs import FINISHED, partition_of
from esg_assets.defs.alerting.job_day import central_day, utc_now

FAILURE_RATE_CHECK_KEY = AssetCheckKey(esg_ratings.key, FAILURE_RATE_CHECK)
_PAGE = 50


def alert_failed_checks(
    instance: DagsterInstance, ledger: AlertLedger, cursor: int | None, now: datetime
) -> tuple[int, str]:
    """Sends failure_rate for each day whose check failed since ``cursor``; returns the new cursor and a summary.

    Days older than the ledger's lookback are skipped: enabling the sensor must not page for old history.
    """
    after = cursor or 0
    failed = _records_after(instance, after, AssetCheckExecutionRecordStatus.FAILED)
    oldest_day = central_day(now) - timedelta(days=LOOKBACK_DAYS - 1)
    outcomes = []
    for record in failed:
        run = instance.get_run_by_id(record.run_id)
        partition = partition_of(run) if run else None
        if partition is None or date.fromisoformat(partition) < oldest_day:
            outcomes.append(f"record {record.id} ({partition or 'no partition'}) skipped")
            continue
        alert = _alert_of(record, partition)
        sent = ledger.send_once(alert)
        outcomes.append(f"{alert.dedup_key} {'sent' if sent else 'already sent'}")
    new_cursor = max([after] + [record.id for record in failed])
    planned = _records_after(instance, after, AssetCheckExecutionRecordStatus.PLANNED)
    in_flight = [record.id for record in planned if _running(instance, record)]
    if in_flight:
        new_cursor = min(new_cursor, min(in_flight) - 1)
    return new_cursor, "; ".join(outcomes) or "no new failed failure_rate check"


def _alert_of(record: AssetCheckExecutionRecord, partition: str) -> Alert:
    """The alert with the check's own numbers (its metadata: failed, accounts, failure_rate, threshold)."""
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    metadata = evaluation.metadata if evaluation else {}
    numbers = {name: getattr(value, "value", value) for name, value in metadata.items()}
    failed, total = int(numbers.get("failed", 0)), int(numbers.get("accounts", 0))
    rate, threshold = float(numbers.get("failure_rate", 0.0)), float(numbers.get("threshold", 0.0))
    return trigger(
        FAILURE_RATE,
        partition,
        f"{failed} of {total} accounts Failed ({rate:.2%}), above the {threshold:.2%} limit; "
        "the file was published with the failures marked",
        {"accounts_failed": failed, "accounts_total": total, "failure_rate": rate, "threshold": threshold},
        record.run_id,
    )


def _records_after(
    instance: DagsterInstance, after: int, status: AssetCheckExecutionRecordStatus
) -> list[AssetCheckExecutionRecord]:
    """The check's records with this status and an id above ``after``, oldest first.

    The storage pages newest first, with its cursor meaning "ids below this one".
    """
    records: list[AssetCheckExecutionRecord] = []
    before = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            FAILURE_RATE_CHECK_KEY, limit=_PAGE, cursor=before, status={status}
        )
        newer = [record for record in page if record.id > after]
        records += newer
        if len(page) < _PAGE or len(newer) < len(page):
            return sorted(records, key=lambda record: record.id)
        before = page[-1].id


def _running(instance: DagsterInstance, record: AssetCheckExecutionRecord) -> bool:
    run = instance.get_run_by_id(record.run_id)
    return run is not None and run.status not in FINISHED


@sensor(
    name="esg_failure_rate_alert",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="A failed failure_rate check (more than ESG_MAX_FAILURE_RATE of the accounts Failed): alert "
    "failure_rate to the business and dev. The check does not block, so the file is still published.",
)
def esg_failure_rate_alert(context: SensorEvaluationContext) -> SkipReason:
    configure_sensor_logging()
    ledger = alert_ledger_from_env(context.instance)
    cursor, outcome = alert_failed_checks(
        context.instance, ledger, int(context.cursor) if context.cursor else None, utc_now()
    )
    context.update_cursor(str(cursor))
    return SkipReason(outcome)
