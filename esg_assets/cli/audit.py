"""``esg-report audit verify``: check the audit log's chain and compare it with its witnesses; ``audit show
--date D``: list a day's records."""

from __future__ import annotations

import argparse
import sys

from esg_assets.cli.common import EXIT_FAILED, EXIT_USAGE, CommandError, audit_log, audit_trail, parse_day
from esg_assets.core.settings import AUDIT_LOG_DIR
from esg_assets.lib.audit.witness import compare


class AuditCommand:
    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="check the audit log, or list the records of a day's files",
            description=f"The hash-chained audit log in {AUDIT_LOG_DIR.name}: publications, reads, denied "
            "attempts, verifications and retention deletes.",
        )
        actions = parser.add_subparsers(metavar="ACTION", required=True)
        verify = actions.add_parser(
            "verify", help="check every record and the chain, and compare them with the witnesses; exit 1 "
            "naming each problem", description=(
                "Detects edited, deleted, inserted or re-ordered records and a log cut or torn at its end; "
                "then compares the log with each witness (ESG_AUDIT_SYSLOG_COPY, ESG_AUDIT_WITNESS_URI) and "
                "names every record missing, altered or added on either side, which a consistent rewrite of "
                "the local log and its checkpoint cannot hide."
            ),
        )  # fmt: skip
        verify.set_defaults(audit_action=_verify)
        show = actions.add_parser("show", help="list the records of one day's files")
        show.add_argument("--date", required=True, type=parse_day, metavar="YYYY-MM-DD", help="the day")
        show.set_defaults(audit_action=_show)
        return parser

    def run(self, args: argparse.Namespace) -> int:
        return args.audit_action(args)


def _verify(args: argparse.Namespace) -> int:
    log = audit_log()
    count, problems = log.verify()
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(f"ok {log.path}: {count} records, chain and checkpoint intact")
    try:
        witnesses = audit_trail().copies()
    except ValueError as error:  # names the setting
        raise CommandError(str(error), EXIT_USAGE) from None
    if not witnesses:
        print(
            "esg-report: warning: no audit witness to compare with (ESG_AUDIT_SYSLOG_COPY, "
            "ESG_AUDIT_WITNESS_URI): a consistent rewrite of the log and its checkpoint would pass",
            file=sys.stderr,
        )
    local = list(log.records())
    owed = log.owed()
    failed = bool(problems)
    for witness in witnesses:
        result = compare(local, witness, owed.get(witness.kind, ()))
        for note in result.notes:
            print(f"note witness {result.name}: {note}")
        for problem in result.problems:
            print(f"FAIL witness {result.name}: {problem}")
        if not result.problems:
            print(f"ok witness {result.name}: {result.matched} records match the local log")
        failed = failed or bool(result.problems)
    return EXIT_FAILED if failed else 0


def _show(args: argparse.Namespace) -> int:
    day = args.date.isoformat()
    shown = 0
    for record in audit_log().records():
        if record.get("day") != day:
            continue
        shown += 1
        via = f" (as {record['os_user']})" if record.get("os_user") not in (None, record.get("user")) else ""
        sha = f" sha256={record['sha256']}" if record.get("sha256") else ""
        detail = f" - {record['detail']}" if record.get("detail") else ""
        print(
            f"{record.get('at')} #{record.get('seq')} {record.get('user')}@{record.get('host')}{via} "
            f"{record.get('action')} {record.get('file')} {record.get('outcome')}{sha}{detail}"
        )
    if not shown:
        print(f"no audit records for {day}")
    return 0
