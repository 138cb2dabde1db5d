"""``esg-report verify``: check the day's live set against its sealed manifest, naming each difference."""

from __future__ import annotations

import argparse

from esg_assets.cli.common import (
    EXIT_FAILED,
    CommandError,
    audit_log,
    caller_of,
    keyring,
    parse_day,
    report_store,
)
from esg_assets.core.file_names import manifest_file_name
from esg_assets.lib.audit.log import DONE, FAILED, VERIFY, AuditEvent, AuditLogError
from esg_assets.lib.report_store.verification import verify_day


class VerifyCommand:
    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="check the day's files against their manifest",
            description="Check the seal of the day's manifest, then decrypt (in memory only) and hash each "
            "file it lists: its encryption context must name that file, day, kind and run, and the SHA-256 "
            "of the stored and the plaintext file and the row counts must match the manifest. Prints one "
            "line per problem and exits 1 when there is any. Nothing is written but an audit record.",
        )
        parser.add_argument("--date", required=True, type=parse_day, metavar="YYYY-MM-DD", help="the day")
        return parser

    def run(self, args: argparse.Namespace) -> int:
        result = verify_day(report_store(), keyring(), args.date)
        log = audit_log()
        outcome = DONE if result.ok else FAILED
        detail = f"{len(result.checked)} files checked, {len(result.problems)} problems"
        try:
            log.append(
                AuditEvent(VERIFY, outcome, file=manifest_file_name(args.date), day=args.date, detail=detail),
                caller_of(log.directory),
            )
        except AuditLogError as error:
            raise CommandError(str(error), EXIT_FAILED) from None
        for problem in result.problems:
            print(f"FAIL {problem}")
        if not result.ok:
            return EXIT_FAILED
        print(f"ok {args.date}: {', '.join(result.checked)} match the manifest")
        return 0
