"""``esg-report healthcheck``: the outside check for when Dagster itself is down (no daemon, no sensors, no file).

Sensors, schedules and run monitoring all live in dagster-daemon, so a dead daemon silences every alert. The
firm's cron or monitoring runs this every few minutes instead (docs/runbook.md, "healthcheck"): it reads the
daemon's heartbeats from the instance in DAGSTER_HOME and looks for the day's file in ESG_OUTPUT_URI. With
``--alert`` it delivers the alerts itself, once per day and kind, and resolves them once the check passes again.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from dagster import DagsterInstance

from esg_assets.core import settings
from esg_assets.defs.alerting.dispatch import AlertNotDelivered, alert_dispatcher_from_env
from esg_assets.cli.common import EXIT_FAILED, EXIT_USAGE, CommandError, parse_day
from esg_assets.defs.alerting.alert_kinds import DAEMON_DOWN, NOT_DELIVERED, AlertKind, resolve, trigger
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.job_day import CENTRAL, central_day, deadline_of, utc_now
from esg_assets.core.file_names import manifest_file_name, ratings_file_name
from esg_assets.lib.report_store.store import ReportStore, report_store_for


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


def file_finding(file_exists: Callable[[str], bool], day: date, now: datetime) -> Finding:
    """Healthy when the day's set is published (its manifest, the commit record, exists), or not yet due."""
    name = ratings_file_name(day)
    deadline = deadline_of(day)
    if file_exists(manifest_file_name(day)):
        return Finding(NOT_DELIVERED, True, f"{name} is published", {})
    if now < deadline:
        due = f"{name} not published yet; due at {deadline:%Y-%m-%d %H:%M} Central"
        return Finding(NOT_DELIVERED, True, due, {})
    details = {
        "deadline": deadline.isoformat(timespec="minutes"),
        "checked_at": now.astimezone(CENTRAL).isoformat(timespec="seconds"),
    }
    return Finding(NOT_DELIVERED, False, f"{name} is missing after the {deadline:%H:%M} Central deadline", details)


class HealthcheckCommand:
    """``healthcheck [--date YYYY-MM-DD] [--alert]``: exit 1 when the file is overdue or the daemon is silent."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="check, from outside Dagster, that the daemon is alive and the day's file was published",
            description=(
                "Exit 0 when healthy, 1 when the day's ratings file is missing after the deadline "
                f"({settings.DEADLINE_HOUR.name}, 09:00 Central) or the dagster-daemon heartbeat in "
                f"$DAGSTER_HOME is older than {settings.DAEMON_HEARTBEAT_MAX_AGE_SECONDS.name} seconds, "
                "2 on a configuration error."
            ),
        )
        parser.add_argument(
            "--date",
            type=parse_day,
            metavar="YYYY-MM-DD",
            help="the day to check (default: today, Central time)",
        )
        parser.add_argument(
            "--alert",
            action="store_true",
            help="deliver the not_delivered / daemon_down alerts (once per day) and resolve them when healthy",
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        now = utc_now()
        day = args.date or central_day(now)
        max_age = _max_heartbeat_age()
        store = _report_store()
        with _instance() as instance:
            findings = [daemon_finding(instance, now, max_age), file_finding(store.exists, day, now)]
            for finding in findings:
                print(f"{'ok' if finding.healthy else 'FAIL'} {finding.kind.name}: {finding.message}")
            if args.alert:
                _deliver(instance, findings, day)
        return 0 if all(finding.healthy for finding in findings) else EXIT_FAILED


def _deliver(instance: DagsterInstance, findings: list[Finding], day: date) -> None:
    dispatcher = alert_dispatcher_from_env()
    ledger = AlertLedger(instance, dispatcher)
    partition = day.isoformat()
    for finding in findings:
        try:
            _deliver_one(ledger, finding, partition)
        except AlertNotDelivered as failure:
            raise CommandError(f"{failure}; the next healthcheck tries again", EXIT_FAILED) from None
        except Exception as error:  # the ledger's database is down: alert anyway, PagerDuty dedups by key
            if finding.healthy:
                continue
            print(f"alert ledger unavailable ({type(error).__name__}); alerting without it")
            try:
                dispatcher.deliver(trigger(finding.kind, partition, finding.message, finding.details))
            except AlertNotDelivered as failure:
                raise CommandError(f"{failure}; the next healthcheck tries again", EXIT_FAILED) from None


def _deliver_one(ledger: AlertLedger, finding: Finding, partition: str) -> None:
    if finding.healthy:
        opened = ledger.entry(partition, finding.kind.name)
        if opened is None or not opened.sent:
            return
        alert = resolve(finding.kind, partition, f"resolved: {finding.message}")
    else:
        alert = trigger(finding.kind, partition, finding.message, finding.details)
    sent = ledger.send_once(alert)
    print(f"alert {alert.dedup_key} {alert.action}: {'sent' if sent else 'already sent'}")


def _instance() -> DagsterInstance:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise CommandError("DAGSTER_HOME is not set: point it at the job's Dagster instance", EXIT_USAGE)
    if not os.path.isdir(home):
        raise CommandError(f"DAGSTER_HOME={home} is not a directory", EXIT_USAGE)
    return DagsterInstance.get()


def _report_store() -> ReportStore:
    # Only the location: whether the file exists needs no key (unlike esg_assets.cli.common.report_store).
    try:
        return report_store_for(settings.OUTPUT_URI.value())
    except ValueError as error:  # its message names the setting and the value
        raise CommandError(str(error), EXIT_USAGE) from None


def _max_heartbeat_age() -> int:
    setting = settings.DAEMON_HEARTBEAT_MAX_AGE_SECONDS
    text = setting.value()
    if not text.isdigit() or int(text) <= 0:
        message = f"Setting {setting.name} must be a positive number of seconds, got {text!r}"
        raise CommandError(message, EXIT_USAGE)
    return int(text)
