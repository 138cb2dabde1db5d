"""Every alert kind of the job: its severity, who gets it, and the first step of its runbook section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from esg_assets.defs.alerting.alert import RESOLVED, Alert

RUNBOOK = "docs/runbook.md"


@dataclass(frozen=True)
class AlertKind:
    name: str
    severity: str
    audience: str  # "dev" or "business_and_dev" (esg_assets.defs.alerting.alert.AUDIENCES)
    runbook_step: str  # the "First step" line of the kind's section in docs/runbook.md, verbatim
    business_news: str = (
        ""  # for the business: what is late or missing, in plain words (no run ids, no jargon)
    )


def _kind(name: str, severity: str, audience: str, step: str, business_news: str = "") -> AlertKind:
    return AlertKind(name, severity, audience, f"{step} ({RUNBOOK}#{name})", business_news)


RUN_FAILURE = _kind(
    "run_failure",
    "critical",
    "business_and_dev",
    "Open the run link and read the error of the first failed step.",
    "the job that produces the day's ESG ratings file stopped on an error, so the file is late",
)
MAX_RUNTIME = _kind(
    "max_runtime",
    "critical",
    "business_and_dev",
    "Open the run link and find the step that was still running when the 4-hour limit stopped it.",
    "the job that produces the day's ESG ratings file ran past its 4-hour limit and was stopped, so the file "
    "is late",
)
DEADLINE = _kind(
    "deadline",
    "critical",
    "business_and_dev",
    "Open the run link, see how far the run got, and tell the business when the file will be ready.",
    "the day's ESG ratings file was not ready by 09:00 Central: the job was still running and was stopped",
)
NOT_STARTED = _kind(
    "not_started",
    "critical",
    "business_and_dev",
    "Check that dagster-daemon is running and that esg_daily_schedule is on in the Dagster UI.",
    "the job that produces the day's ESG ratings file has not started, so the file will be late",
)
FAILURE_RATE = _kind(
    "failure_rate",
    "error",
    "business_and_dev",
    "Read the most frequent error reason of the day's Failed accounts in the JSON log.",
    "the day's ESG ratings file is published, but more accounts than allowed have no rating (marked Failed)",
)
RUN_CANCELED = _kind(
    "run_canceled",
    "warning",
    "business_and_dev",
    "Find who canceled the run in its event log; re-run the day if that was not intended.",
    "the job that produces the day's ESG ratings file was stopped before it finished, so the file may be "
    "late",
)
NOT_DELIVERED = _kind(
    "not_delivered",
    "critical",
    "business_and_dev",
    "Check dagster-daemon and the day's runs in the Dagster UI, then re-run the day.",
    "the day's ESG ratings file is missing after the 09:00 Central deadline",
)
RECONCILIATION = _kind(
    "reconciliation",
    "error",
    "dev",
    "Open the run's reconciliation check and compare its listed accounts with what the ESG API returns now.",
)
DAEMON_DOWN = _kind(
    "daemon_down",
    "critical",
    "business_and_dev",
    "Restart dagster-daemon on the job's host and read its log.",
    "the scheduler that starts the ESG ratings job is down, so the day's file may be late",
)
# Warnings before the limits, while esg_ratings fetches (sensors/projected_late.py, sensors/degraded.py).
PROJECTED_LATE = _kind(
    "projected_late",
    "warning",
    "business_and_dev",
    "Open the run link and read the latest esg_ratings progress lines (requests/s, 429s, ETA) against the "
    "projection.",
    "at its current pace the job that produces the day's ESG ratings file would finish after its deadline, "
    "so the file may be late",
)
DEGRADED = _kind(
    "degraded",
    "warning",
    "dev",
    "Read which rule the alert names (slow or 429s), then the ESG API's errors in the run's esg_ratings log.",
)

ALERT_KINDS: Mapping[str, AlertKind] = {
    kind.name: kind
    for kind in (
        RUN_FAILURE,
        MAX_RUNTIME,
        DEADLINE,
        NOT_STARTED,
        FAILURE_RATE,
        RUN_CANCELED,
        NOT_DELIVERED,
        RECONCILIATION,
        DAEMON_DOWN,
        PROJECTED_LATE,
        DEGRADED,
    )
}

# A successful run of the day that published the file closes these; failure_rate and reconciliation also need
# that run's check to pass, and daemon_down is closed by `esg-report healthcheck` once the heartbeat is fresh.
# projected_late and degraded warn about a run on its way: once the day's file is published they are moot.
RESOLVED_BY_A_GOOD_RUN = (
    RUN_FAILURE,
    MAX_RUNTIME,
    DEADLINE,
    NOT_STARTED,
    RUN_CANCELED,
    NOT_DELIVERED,
    PROJECTED_LATE,
    DEGRADED,
)


def trigger(
    kind: AlertKind,
    partition: str,
    summary: str,
    details: Mapping[str, int | float | str],
    run_id: str | None = None,
) -> Alert:
    """The alert of ``kind`` for the day ``partition``, with its severity, audience and first runbook step."""
    return Alert(
        kind=kind.name,
        partition=partition,
        severity=kind.severity,
        summary=summary,
        details=details,
        run_id=run_id,
        audience=kind.audience,
        runbook_step=kind.runbook_step,
    )


def resolve(kind: AlertKind, partition: str, summary: str, run_id: str | None = None) -> Alert:
    """The resolve event that closes the day's alert of ``kind`` (same dedup key)."""
    return Alert(
        kind=RESOLVED,
        action="resolve",
        resolves=kind.name,
        partition=partition,
        severity="info",
        summary=summary,
        run_id=run_id,
        audience=kind.audience,
    )
