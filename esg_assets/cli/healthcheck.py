"""``esg-report healthcheck``: the outside check for when Dagster is down (no daemon, no sensors, no file).

The firm's cron or monitoring runs this every few minutes (docs/runbook.md, "healthcheck"): it reads the
daemon's heartbeats from the instance in DAGSTER_HOME and looks for the day's file in ESG_OUTPUT_URI; with
``--alert`` it delivers the alerts itself. What it checks and sends: esg_assets/defs/alerting/healthcheck.py.
"""

from __future__ import annotations

import argparse
import os

from dagster import DagsterInstance

from esg_assets.cli.common import EXIT_FAILED, EXIT_USAGE, CommandError, parse_day, report_store
from esg_assets.config import resources
from esg_assets.config.environment import now, variable
from esg_assets.core import settings
from esg_assets.core.setting_values import whole_number
from esg_assets.defs.alerting.dispatch import AlertNotDelivered
from esg_assets.defs.alerting.healthcheck import daemon_finding, deliver_findings, file_finding
from esg_assets.defs.alerting.job_day import central_day, utc_now
from esg_assets.defs.alerting.resource import AlertingResource


class HealthcheckCommand:
    """``healthcheck [--date YYYY-MM-DD] [--alert]``: exit 1 if the file is overdue or the daemon silent."""

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
            help="deliver the not_delivered / daemon_down alerts (once per day) and resolve them "
            "when healthy",
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        moment = utc_now()
        day = args.date or central_day(moment)
        max_age = _max_heartbeat_age()
        alerting = _alerting()
        store = report_store()
        with _instance() as instance:
            findings = [
                daemon_finding(instance, moment, max_age),
                file_finding(store.exists, day, moment, alerting.window),
            ]
            for finding in findings:
                print(f"{'ok' if finding.healthy else 'FAIL'} {finding.kind.name}: {finding.message}")
            if args.alert:
                try:
                    for outcome in deliver_findings(instance, alerting.dispatcher(), findings, day):
                        print(outcome)
                except AlertNotDelivered as failure:
                    raise CommandError(f"{failure}; the next healthcheck tries again", EXIT_FAILED) from None
        return 0 if all(finding.healthy for finding in findings) else EXIT_FAILED


def _alerting() -> AlertingResource:
    try:
        return resources.alerting(now)
    except ValueError as error:  # a bad ESG_DEADLINE_HOUR, ESG_START_GRACE_MINUTES, ...: named in the message
        raise CommandError(str(error), EXIT_USAGE) from None


def _instance() -> DagsterInstance:
    home = variable("DAGSTER_HOME")
    if not home:
        raise CommandError("DAGSTER_HOME is not set: point it at the job's Dagster instance", EXIT_USAGE)
    if not os.path.isdir(home):
        raise CommandError(f"DAGSTER_HOME={home} is not a directory", EXIT_USAGE)
    return DagsterInstance.get()


def _max_heartbeat_age() -> int:
    setting = settings.DAEMON_HEARTBEAT_MAX_AGE_SECONDS
    try:
        return whole_number(setting, now(setting))
    except ValueError as error:
        raise CommandError(str(error), EXIT_USAGE) from None
