"""``esg-report verify --date D``: check a day's files against their manifest, naming each difference."""

from __future__ import annotations

import argparse

from esg_assets.access.caller import current_caller
from esg_assets.audit.log import DONE, FAILED, VERIFY, AuditEvent, AuditLogError
from esg_assets.cli.common import EXIT_FAILED, CommandError, audit_log, key_source, parse_day, report_store
from esg_assets.storage.file_names import manifest_file_name
from esg_assets.storage.verification import verify_day


class VerifyCommand:
    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="check the day's files against their manifest",
            description="Decrypt (in memory only) and hash each file the day's manifest lists, and compare "
            "SHA-256 of ciphertext and plaintext and row counts with it. Prints one line per problem and "
            "exits 1 when there is any. Nothing is written but an audit record.",
        )
        parser.add_argument("--date", required=True, type=parse_day, metavar="YYYY-MM-DD", help="the day")
        return parser

    def run(self, args: argparse.Namespace) -> int:
        result = verify_day(report_store(), key_source(), args.date)
        log = audit_log()
        outcome = DONE if result.ok else FAILED
        detail = f"{len(result.checked)} files checked, {len(result.problems)} problems"
        try:
            log.append(
                AuditEvent(VERIFY, outcome, file=manifest_file_name(args.date), day=args.date, detail=detail),
                current_caller(log.directory),
            )
        except AuditLogError as error:
            raise CommandError(str(error), EXIT_FAILED) from None
        for problem in result.problems:
            print(f"FAIL {problem}")
        if not result.ok:
            return EXIT_FAILED
        print(f"ok {args.date}: {', '.join(result.checked)} match the manifest")
        return 0
