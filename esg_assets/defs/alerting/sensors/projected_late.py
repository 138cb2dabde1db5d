"""Warns when a run's fetch, at its current pace, would end after the 09:00 deadline or the 4-hour limit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from esg_assets.core.partitions import partition_day
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import PROJECTED_LATE, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.fetch_pace import (
    DEFAULT_THRESHOLDS,
    PaceThresholds,
    current_pace,
    projected_end,
)
from esg_assets.defs.alerting.fetching_runs import FetchingRun, fetching_runs
from esg_assets.defs.alerting.job_day import (
    CENTRAL,
    DEFAULT_WINDOW,
    JobWindow,
    deadline_of,
    recent_days,
    utc_now,
)
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.daily_ratings.job import RUN_WINDOW_SECONDS
from esg_assets.lib.logs.run_logging import JobLogsResource


def alert_if_projected_late(
    instance: DagsterInstance,
    ledger: AlertLedger,
    now: datetime,
    window: JobWindow = DEFAULT_WINDOW,
    thresholds: PaceThresholds = DEFAULT_THRESHOLDS,
) -> str:
    """Sends projected_late (once per day) for each recent day whose fetch is projected to end after a limit.

    The projection starts once the fetch has run ``thresholds.warmup_seconds``, and uses the accounts fetched
    a second over the last ``thresholds.throughput_seconds`` (or since the fetch started).
    """
    outcomes = []
    for run in fetching_runs(instance, recent_days(now, LOOKBACK_DAYS), thresholds.throughput_seconds):
        latest = run.progress[-1]
        if latest.elapsed_seconds < thresholds.warmup_seconds:
            outcomes.append(
                f"{run.partition}: fetching for {latest.elapsed_seconds:.0f} s, not projected yet"
            )
            continue
        end = projected_end(run.progress, thresholds.throughput_seconds)
        limits = limits_of(run, window)
        passed = [(name, when) for name, when in limits if end is None or end > when]
        if not limits:
            outcomes.append(f"{run.partition}: no deadline or runtime limit applies to run {run.run_id}")
            continue
        if not passed:
            outcomes.append(f"{run.partition}: projected to end at {_central(end)}, within its limits")
            continue
        alert = _alert_of(run, end, passed, thresholds)
        sent = ledger.send_once(alert)
        outcomes.append(f"{alert.dedup_key} {'sent' if sent else 'already sent'}")
    return "; ".join(outcomes) or "no run of a recent day is fetching"


def limits_of(run: FetchingRun, window: JobWindow = DEFAULT_WINDOW) -> list[tuple[str, datetime]]:
    """The limits the run must end by, earliest first: the day's deadline (for a run created before it, as
    the deadline sensor terminates only those) and its maximum runtime from its start (run monitoring)."""
    limits = []
    deadline = deadline_of(partition_day(run.partition), window)
    if run.record.create_timestamp < deadline:
        limits.append((f"the {deadline:%H:%M} Central deadline", deadline))
    runtime = _max_runtime_seconds(run.record.dagster_run.tags)
    if runtime is not None:
        started = datetime.fromtimestamp(run.progress[-1].run_started_at, timezone.utc)
        ends = started + timedelta(seconds=runtime)
        limits.append((f"the run's {_duration(runtime)} limit at {_central(ends)}", ends))
    return sorted(limits, key=lambda limit: limit[1])


def _max_runtime_seconds(tags) -> float | None:
    """The run's ``dagster/max_runtime``; the daily job's 4 hours (dagster.yaml's global limit too) when the
    run has none (`dagster asset materialize`); None for a value run monitoring cannot read (no limit)."""
    text = tags.get(MAX_RUNTIME_SECONDS_TAG)
    if text is None:
        return float(RUN_WINDOW_SECONDS)
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _alert_of(
    run: FetchingRun, end: datetime | None, passed: list[tuple[str, datetime]], thresholds: PaceThresholds
) -> Alert:
    latest = run.progress[-1]
    pace = current_pace(run.progress, thresholds.throughput_seconds)
    throughput = (
        f"{latest.done} of {latest.to_fetch} accounts fetched in {latest.elapsed_seconds / 60:.1f} min, "
        f"{pace.accounts_per_second:.1f} accounts/s over the last {pace.seconds / 60:.1f} min "
        f"(rate limit {latest.rate_limit_per_second:g}/s)"
    )
    after = " and ".join(name for name, _ in passed)
    if end is None:
        summary = (
            f"esg_ratings is fetching nothing: at this pace it would not end before {after}; {throughput}"
        )
    else:
        summary = f"esg_ratings is projected to end at {_central(end)}, after {after}; {throughput}"
    details: dict[str, int | float | str] = {
        "projected_end": end.astimezone(CENTRAL).isoformat(timespec="minutes") if end else "never",
        "limit": passed[0][1].astimezone(CENTRAL).isoformat(timespec="minutes"),
        "accounts_done": latest.done,
        "accounts_to_fetch": latest.to_fetch,
        "accounts_per_second": round(pace.accounts_per_second, 2),
        "rate_limit_per_second": latest.rate_limit_per_second,
        "fetch_minutes": round(latest.elapsed_seconds / 60, 1),
    }
    return trigger(PROJECTED_LATE, run.partition, summary, details, run.run_id)


def _central(moment: datetime | None) -> str:
    return f"{moment.astimezone(CENTRAL):%H:%M} Central" if moment else "never"


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g}-hour" if hours == int(hours) else f"{seconds:g}-second"


@sensor(
    name="esg_projected_late_alert",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="While esg_ratings fetches, projects its end from its current pace: after the 09:00 Central "
    "deadline or the run's 4-hour limit, alert projected_late (warning, business and dev), once per day.",
)
def esg_projected_late_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(
        alert_if_projected_late(context.instance, ledger, utc_now(), alerting.window, alerting.pace)
    )
