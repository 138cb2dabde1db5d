"""``esg-report rerun --date D --accounts A,B``: fetch those accounts again and republish the day's files."""

from __future__ import annotations

import argparse

from dagster import DagsterInstance, materialize

from esg_assets.cli.common import EXIT_FAILED, CommandError, parse_day
from esg_assets.config.environment import variable
from esg_assets.config.resources import dagster_resources
from esg_assets.core.account_ids import ACCOUNT_ID
from esg_assets.defs.daily_ratings.day_run_lock import LAUNCHED_BY_TAG
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.day_files.day_files import day_files
from esg_assets.defs.run_metrics.run_history import run_history


def _account_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [account_id for account_id in ids if not ACCOUNT_ID.fullmatch(account_id)]
    if not ids or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated account ids (letters, digits, '-', '_', '.'), got {text!r}"
        )
    return ids


class RerunCommand:
    """Re-run named accounts of a day: the same as materializing ``esg_ratings*`` with ``accounts`` config."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="fetch named accounts of a day again and republish that day's file and summary",
            description="Fetch the named accounts of the day again, merge them into the day's results and "
            "republish the day's file, error log and summary. Other accounts keep their rows. The run is "
            "recorded in the Dagster instance of DAGSTER_HOME when it is set.",
        )
        parser.add_argument("--date", required=True, type=parse_day, metavar="YYYY-MM-DD")
        parser.add_argument("--accounts", required=True, type=_account_ids, metavar="A,B,...")
        return parser

    def run(self, args: argparse.Namespace) -> int:
        instance = DagsterInstance.get() if variable("DAGSTER_HOME") else DagsterInstance.ephemeral()
        with instance:
            result = materialize(
                [esg_ratings, day_files, run_history],
                partition_key=args.date.isoformat(),
                resources=dagster_resources(),
                instance=instance,
                run_config={"ops": {"esg_ratings": {"config": {"accounts": args.accounts}}}},
                tags={LAUNCHED_BY_TAG: "esg-report rerun"},
                raise_on_error=False,
            )
        if not result.success:
            failure = result.get_run_failure_event()
            step_failures = [event for event in result.all_events if event.is_step_failure]
            reason = failure.message
            if step_failures:
                data = step_failures[0].step_failure_data
                reason = data.user_failure_data.description if data.user_failure_data else data.error.message
            raise CommandError(f"rerun of {args.date} failed: {reason.strip()}", EXIT_FAILED)
        print(f"re-ran {len(args.accounts)} account(s) of {args.date}; run {result.run_id}")
        return 0
