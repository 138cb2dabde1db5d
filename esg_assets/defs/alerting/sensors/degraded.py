"""Warns when a run's fetch is degraded: throughput well below the configured rate, or a surge of 429s."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from esg_assets.defs.alerting.alert_kinds import DEGRADED, trigger
from esg_assets.defs.alerting.alert_ledger import LOOKBACK_DAYS, AlertLedger
from esg_assets.defs.alerting.fetch_pace import DEFAULT_THRESHOLDS, PaceThresholds, pace_over
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

    A window is judged only once the fetch has run for all of it.
    """
    span = max(thresholds.throughput_seconds, thresholds.throttled_seconds)
    outcomes = []
    for run in fetching_runs(instance, recent_days(now, LOOKBACK_DAYS), span):
        reasons, details = degradations(run, thresholds)
        if not reasons:
            outcomes.append(f"{run.partition}: fetch pace within its thresholds")
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
    """What is degraded in the run's fetch, in words, and the alert's numbers; no words when nothing is."""
    latest = run.progress[-1]
    reasons: list[str] = []
    details: dict[str, int | float | str] = {
        "rate_limit_per_second": latest.rate_limit_per_second,
        "accounts_done": latest.done,
        "accounts_to_fetch": latest.to_fetch,
    }
    floor = thresholds.throughput_share * latest.rate_limit_per_second
    slow = pace_over(run.progress, thresholds.throughput_seconds)
    if slow is not None and slow.accounts_per_second < floor:
        reasons.append(
            f"{slow.accounts_per_second:.1f} accounts/s over the last {slow.seconds / 60:.1f} min, below "
            f"{thresholds.throughput_share:.0%} of the {latest.rate_limit_per_second:g}/s rate limit"
        )
        details.update(
            accounts_per_second=round(slow.accounts_per_second, 2),
            throughput_floor=round(floor, 2),
            throughput_window_seconds=round(slow.seconds),
        )
    throttled = pace_over(run.progress, thresholds.throttled_seconds)
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
    description="While esg_ratings fetches: throughput below ESG_DEGRADED_THROUGHPUT_SHARE of the rate limit "
    "over ESG_DEGRADED_THROUGHPUT_SECONDS, or 429s above ESG_DEGRADED_THROTTLED_SHARE of the requests over "
    "ESG_DEGRADED_THROTTLED_SECONDS: alert degraded (warning, dev), once per day.",
)
def esg_degraded_alert(
    context: SensorEvaluationContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> SkipReason:
    job_logs.configure_for_sensors()
    ledger = alerting.ledger(context.instance)
    return SkipReason(alert_if_degraded(context.instance, ledger, utc_now(), alerting.pace))
