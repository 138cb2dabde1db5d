"""Warns when a run's fetch is degraded: throughput well below the configured rate, or a surge of 429s, in any
of its shards."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.defs.alerting.alert_kinds import DEGRADED, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.fetch_pace import DEFAULT_THRESHOLDS, PaceThresholds, pace_over
from esg_assets.defs.alerting.fetch_shards import ShardFetch
from esg_assets.defs.alerting.fetching_runs import FetchingRun, fetching_runs
from esg_assets.defs.alerting.job_day import recent_days, utc_now
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.lib.logs.run_logging import JobLogsResource


def alert_if_degraded(
    instance: DagsterInstance,
    ledger: AlertLedger,
    now: datetime,
    thresholds: PaceThresholds = DEFAULT_THRESHOLDS,
) -> str:
    """Sends degraded (once per day) for each recent day whose fetch, over its last minutes, fetched fewer
    accounts a second than ``throughput_share`` of its rate limit (averaged over ``throughput_seconds``) or
    had more than ``throttled_share`` of its requests answered 429 (over ``throttled_seconds``).

    With several shards each fetching shard is judged on its own against its share of the rate limit; a
    shard whose fetch is over no longer counts, and one not started is not judged (the outcome says so).
    A window is judged only once the shard has fetched for all of it.
    """
    span = max(thresholds.throughput_seconds, thresholds.throttled_seconds)
    outcomes = []
    for run in fetching_runs(instance, recent_days(now, LOOKBACK_DAYS), span):
        reasons, details = degradations(run, thresholds)
        if not reasons:
            waiting = [shard.label for shard in run.shards if not shard.started]
            outcomes.append(
                f"{run.partition}: fetch pace within its thresholds"
                + (f"; {', '.join(waiting)} not started" if waiting else "")
            )
            continue
        alert = trigger(
            DEGRADED, run.partition, "esg_ratings is degraded: " + "; ".join(reasons), details, run.run_id
        )
        sent = ledger.send_once(alert)
        outcomes.append(f"{alert.dedup_key} {'sent' if sent else 'already sent'}")
    return "; ".join(outcomes) or "no run of a recent day is fetching"


def degradations(
    run: FetchingRun, thresholds: PaceThresholds
) -> tuple[list[str], dict[str, int | float | str]]:
    """What is degraded in the run's fetch, in words, and the alert's numbers; no words when nothing is.

    One shard: its figures under plain names. Several: each degraded shard's words start with its name
    (``shard 2 of 4: ...``) and its numbers with ``shard_2_``; the plain names hold the run's totals.
    """
    shards = run.shards
    if len(shards) == 1:
        return shard_degradations(shards[0], thresholds)
    started = [shard for shard in shards if shard.started]
    reasons: list[str] = []
    details: dict[str, int | float | str] = {
        "rate_limit_per_second": max(shard.latest.rate_limit_per_second for shard in started) * len(shards),
        "accounts_done": sum(shard.latest.done for shard in started),
        "accounts_to_fetch": sum(shard.latest.to_fetch for shard in started),
        "shards": len(shards),
    }
    degraded = []
    for shard in shards:
        if not shard.is_fetching:
            continue
        words, numbers = shard_degradations(shard, thresholds)
        if words:
            degraded.append(str(shard.shard))
            reasons.append(f"{shard.label}: " + "; ".join(words))
            details.update({f"shard_{shard.shard}_{name}": value for name, value in numbers.items()})
    if degraded:
        details["degraded_shards"] = ", ".join(degraded)
    return reasons, details


def shard_degradations(
    shard: ShardFetch, thresholds: PaceThresholds
) -> tuple[list[str], dict[str, int | float | str]]:
    """What is degraded in one shard's fetch, judged against its own rate limit (its share of the run's)."""
    latest = shard.latest
    reasons: list[str] = []
    details: dict[str, int | float | str] = {
        "rate_limit_per_second": latest.rate_limit_per_second,
        "accounts_done": latest.done,
        "accounts_to_fetch": latest.to_fetch,
    }
    limit = (
        f"its {latest.rate_limit_per_second:g}/s share of the rate limit"
        if shard.shards > 1
        else f"the {latest.rate_limit_per_second:g}/s rate limit"
    )
    floor = thresholds.throughput_share * latest.rate_limit_per_second
    slow = pace_over(shard.progress, thresholds.throughput_seconds)
    if slow is not None and slow.accounts_per_second < floor:
        reasons.append(
            f"{slow.accounts_per_second:.1f} accounts/s over the last {slow.seconds / 60:.1f} min, below "
            f"{thresholds.throughput_share:.0%} of {limit}"
        )
        details.update(
            accounts_per_second=round(slow.accounts_per_second, 2),
            throughput_floor=round(floor, 2),
            throughput_window_seconds=round(slow.seconds),
        )
    throttled = pace_over(shard.progress, thresholds.throttled_seconds)
    if throttled is not None and throttled.throttled_share > thresholds.throttled_share:
        reasons.append(
            f"{throttled.throttled} of {throttled.requests} requests ({throttled.throttled_share:.1%}) "
            f"answered 429 over the last {throttled.seconds / 60:.1f} min, above "
            f"{thresholds.throttled_share:.0%}"
        )
        details.update(
            throttled_429=throttled.throttled,
            requests=throttled.requests,
            throttled_share=round(throttled.throttled_share, 4),
            throttled_threshold=thresholds.throttled_share,
            throttled_window_seconds=round(throttled.seconds),
        )
    return reasons, details


@sensor(
    name="esg_degraded_alert",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="While esg_ratings fetches, in any shard: throughput below ESG_DEGRADED_THROUGHPUT_SHARE of "
    "its rate limit (share) over ESG_DEGRADED_THROUGHPUT_SECONDS, or 429s above ESG_DEGRADED_THROTTLED_SHARE "
    "of the requests over ESG_DEGRADED_THROTTLED_SECONDS: alert degraded (warning, dev), once per day.",
)
def esg_degraded_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(alert_if_degraded(context.instance, ledger, utc_now(), alerting.pace))
