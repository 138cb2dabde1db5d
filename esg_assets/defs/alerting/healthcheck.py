"""The outside check for when Dagster itself is down: the daemon's heartbeats and the day's published file.

What ``esg-report healthcheck`` finds, and the alerts it sends itself through the ledger (once per day and
kind, resolved once the check passes again): sensors, schedules and run monitoring all live in dagster-daemon,
so a dead daemon silences every other alert (docs/runbook.md, "healthcheck").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from dagster import DagsterInstance

from esg_assets.core.file_names import manifest_file_name, ratings_file_name
from esg_assets.defs.alerting.alert_kinds import DAEMON_DOWN, NOT_DELIVERED, AlertKind, resolve, trigger
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.dispatch import AlertDispatcher, AlertNotDelivered
from esg_assets.defs.alerting.job_day import CENTRAL, DEFAULT_WINDOW, JobWindow, deadline_of


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: fine, or the alert it calls for."""

    kind: AlertKind
    healthy: bool
    message: str
    details: dict


def daemon_finding(instance: DagsterInstance, now: datetime, max_age_seconds: int) -> Finding:
    """Healthy when every daemon the instance needs sent a heartbeat in the last ``max_age_seconds``."""
    try:
        heartbeats = instance.get_daemon_heartbeats()
    except Exception as error:  # e.g. the instance's database is down: as bad as a dead daemon
        message = f"cannot read the Dagster instance: {type(error).__name__}: {error}"
        return Finding(DAEMON_DOWN, False, message, {})
    ages = {
        daemon: (now.timestamp() - heartbeats[daemon].timestamp) if daemon in heartbeats else None
        for daemon in instance.get_required_daemon_types()
    }
    stale = {daemon: age for daemon, age in ages.items() if age is None or age > max_age_seconds}
    if not stale:
        oldest = max((age for age in ages.values() if age is not None), default=0.0)
        return Finding(DAEMON_DOWN, True, f"dagster-daemon alive (every heartbeat within {oldest:.0f} s)", {})
    described = ", ".join(
        f"{daemon} {'never' if age is None else f'{age:.0f} s ago'}" for daemon, age in sorted(stale.items())
    )
    return Finding(
        DAEMON_DOWN,
        False,
        f"dagster-daemon down: no heartbeat within {max_age_seconds} s from {described}",
        {"max_heartbeat_age_seconds": max_age_seconds, "stale_daemons": len(stale), "stale": described},
    )


def file_finding(
    file_exists: Callable[[str], bool], day: date, now: datetime, window: JobWindow = DEFAULT_WINDOW
) -> Finding:
    """Healthy when the day's set is published (its manifest, the commit record, exists), or not yet due."""
    name = ratings_file_name(day)
    deadline = deadline_of(day, window)
    if file_exists(manifest_file_name(day)):
        return Finding(NOT_DELIVERED, True, f"{name} is published", {})
    if now < deadline:
        due = f"{name} not published yet; due at {deadline:%Y-%m-%d %H:%M} Central"
        return Finding(NOT_DELIVERED, True, due, {})
    details = {
        "deadline": deadline.isoformat(timespec="minutes"),
        "checked_at": now.astimezone(CENTRAL).isoformat(timespec="seconds"),
    }
    return Finding(
        NOT_DELIVERED, False, f"{name} is missing after the {deadline:%H:%M} Central deadline", details
    )


def deliver_findings(
    instance: DagsterInstance, dispatcher: AlertDispatcher, findings: list[Finding], day: date
) -> list[str]:
    """Alerts each unhealthy finding once per day and resolves the ones that recovered; says what it did.

    Raises ``AlertNotDelivered`` when no channel took an alert (the next healthcheck tries again).
    """
    ledger = AlertLedger(instance, dispatcher)
    partition = day.isoformat()
    outcomes = []
    for finding in findings:
        try:
            outcome = _deliver_one(ledger, finding, partition)
        except AlertNotDelivered:
            raise
        except Exception as error:  # the ledger's database is down: alert anyway, PagerDuty dedups by key
            if finding.healthy:
                continue
            outcomes.append(f"alert ledger unavailable ({type(error).__name__}); alerting without it")
            dispatcher.deliver(trigger(finding.kind, partition, finding.message, finding.details))
            continue
        if outcome:
            outcomes.append(outcome)
    return outcomes


def _deliver_one(ledger: AlertLedger, finding: Finding, partition: str) -> str | None:
    if finding.healthy:
        opened = ledger.entry(partition, finding.kind.name)
        if opened is None or not opened.sent:
            return None
        alert = resolve(finding.kind, partition, f"resolved: {finding.message}")
    else:
        alert = trigger(finding.kind, partition, finding.message, finding.details)
    sent = ledger.send_once(alert)
    return f"alert {alert.dedup_key} {alert.action}: {'sent' if sent else 'already sent'}"
