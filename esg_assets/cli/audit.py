"""``esg-report audit verify``: check the audit log's chain; ``audit show --date D``: list a day's records."""

from __future__ import annotations

import argparse

from esg_assets.cli.common import EXIT_FAILED, audit_log, parse_day
from esg_assets.settings import AUDIT_LOG_DIR


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
            "verify", help="check every record and the chain; exit 1 naming each problem", description=(
                "Detects edited, deleted, inserted or re-ordered records and a log cut or torn at its end."
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
    if problems:
        return EXIT_FAILED
    print(f"ok {log.path}: {count} records, chain and checkpoint intact")
    return 0


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
