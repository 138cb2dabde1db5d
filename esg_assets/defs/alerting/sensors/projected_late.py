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
from esg_assets.defs.alerting.fetch_pace import DEFAULT_THRESHOLDS, PaceThresholds
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
from esg_assets.defs.alerting.run_projection import RunProjection, ShardProjection, project_run
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

    The projection starts once a shard of the fetch has run ``thresholds.warmup_seconds``, and uses each
    shard's accounts fetched a second over its last ``thresholds.throughput_seconds`` (or since it started);
    the run ends when its last shard does. A shard not started or still in its warm-up is not projected, and
    the outcome says so.
    """
    outcomes = []
    for run in fetching_runs(instance, recent_days(now, LOOKBACK_DAYS), thresholds.throughput_seconds):
        projection = project_run(run.progress, thresholds)
        if projection.warming_up:
            outcomes.append(
                f"{run.partition}: fetching for {projection.longest_elapsed_seconds:.0f} s, not projected yet"
            )
            continue
        end = projection.end
        limits = limits_of(run, window)
        passed = [(name, when) for name, when in limits if end is None or end > when]
        if not limits:
            outcomes.append(f"{run.partition}: no deadline or runtime limit applies to run {run.run_id}")
            continue
        if not passed:
            earliest = " at the earliest" if projection.not_projected else ""
            outcomes.append(
                f"{run.partition}: projected to end at {_central(end)}{earliest}, within its limits"
                + _not_projected(projection)
            )
            continue
        alert = _alert_of(run, projection, passed)
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


def _alert_of(run: FetchingRun, projection: RunProjection, passed: list[tuple[str, datetime]]) -> Alert:
    slowest = projection.slowest
    end = projection.end
    after = " and ".join(name for name, _ in passed)
    several = slowest.fetch.shards > 1
    if end is None:
        where = f"{slowest.fetch.label} of esg_ratings" if several else "esg_ratings"
        summary = f"{where} is fetching nothing: at this pace it would not end before {after}; "
    else:
        summary = f"esg_ratings is projected to end at {_central(end)}, after {after}; "
    details: dict[str, int | float | str] = {
        "projected_end": end.astimezone(CENTRAL).isoformat(timespec="minutes") if end else "never",
        "limit": passed[0][1].astimezone(CENTRAL).isoformat(timespec="minutes"),
    }
    if several:
        summary += f"slowest {_shard_figures(slowest)}; the run: {_run_figures(projection)}"
        summary += _not_projected(projection)
        details.update(_run_details(projection))
    else:
        summary += _throughput(slowest)
        details.update(_shard_details(slowest))
    return trigger(PROJECTED_LATE, run.partition, summary, details, run.run_id)


def _throughput(shard: ShardProjection, share: str = "") -> str:
    latest, pace = shard.fetch.latest, shard.pace
    assert pace is not None  # a projected shard has its pace
    return (
        f"{latest.done} of {latest.to_fetch} accounts fetched in {latest.elapsed_seconds / 60:.1f} min, "
        f"{pace.accounts_per_second:.1f} accounts/s over the last {pace.seconds / 60:.1f} min "
        f"(rate limit {latest.rate_limit_per_second:g}/s{share})"
    )


def _shard_figures(shard: ShardProjection) -> str:
    """``shard 2 of 4``, its accounts and pace; its rate limit is its share of the run's."""
    return f"{shard.fetch.label}: {_throughput(shard, ', its share')}"


def _run_figures(projection: RunProjection) -> str:
    """The run's accounts (of the started shards), their pace together, and the run's rate limit."""
    of_started = "" if len(projection.started) == len(projection.shards) else " of the started shards"
    return (
        f"{projection.done} of {projection.to_fetch} accounts{of_started} fetched in "
        f"{projection.longest_elapsed_seconds / 60:.1f} min, {projection.accounts_per_second:.1f} accounts/s "
        f"(rate limit {projection.rate_limit_per_second:g}/s)"
    )


def _not_projected(projection: RunProjection) -> str:
    unknown = [shard.why_not_projected for shard in projection.not_projected]
    return f"; {', '.join(unknown)}, so not projected" if unknown else ""


def _shard_details(shard: ShardProjection, prefix: str = "") -> dict[str, int | float | str]:
    latest, pace = shard.fetch.latest, shard.pace
    return {
        f"{prefix}accounts_done": latest.done,
        f"{prefix}accounts_to_fetch": latest.to_fetch,
        f"{prefix}accounts_per_second": round(pace.accounts_per_second, 2) if pace else 0.0,
        f"{prefix}rate_limit_per_second": latest.rate_limit_per_second,
        f"{prefix}fetch_minutes": round(latest.elapsed_seconds / 60, 1),
    }


def _run_details(projection: RunProjection) -> dict[str, int | float | str]:
    """The run's figures under the single-shard names, then the slowest shard's under ``slowest_shard_``."""
    details: dict[str, int | float | str] = {
        "accounts_done": projection.done,
        "accounts_to_fetch": projection.to_fetch,
        "accounts_per_second": round(projection.accounts_per_second, 2),
        "rate_limit_per_second": projection.rate_limit_per_second,
        "fetch_minutes": round(projection.longest_elapsed_seconds / 60, 1),
        "shards": len(projection.shards),
        "slowest_shard": projection.slowest.fetch.shard,
        **_shard_details(projection.slowest, "slowest_shard_"),
    }
    if projection.not_projected:
        unknown = projection.not_projected
        details["not_projected_shards"] = ", ".join(str(shard.fetch.shard) for shard in unknown)
    return details


def _central(moment: datetime | None) -> str:
    return f"{moment.astimezone(CENTRAL):%H:%M} Central" if moment else "never"


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g}-hour" if hours == int(hours) else f"{seconds:g}-second"


@sensor(
    name="esg_projected_late_alert",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="While esg_ratings fetches, projects its end from its current pace (with shards, the end of "
    "the last one): after the 09:00 Central deadline or the run's 4-hour limit, alert projected_late "
    "(warning, business and dev), once per day.",
)
def esg_projected_late_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(
        alert_if_projected_late(context.instance, ledger, utc_now(), alerting.window, alerting.pace)
    )
