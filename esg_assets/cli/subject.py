"""``esg-report subject export|erase --account ID``: a data subject's access and erasure requests, audited.

The audit log is kept beyond the retention period and cannot be edited, so it never holds the account id:
each record of a request holds the SHA-256 of the id instead (docs/compliance.md, "Erasure requests").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from esg_assets.cli.common import (
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_USAGE,
    CommandError,
    audit_log,
    caller_of,
    warehouse,
)
from esg_assets.config.environment import now
from esg_assets.core.account_ids import ACCOUNT_ID, ACCOUNT_ID_CHARACTERS
from esg_assets.core.atomic_files import atomic_file
from esg_assets.core.settings import AUTHORIZED_READERS, RETENTION_DAYS, WAREHOUSE_PATH
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.access.readers import AuthorizedReaders
from esg_assets.lib.audit.log import (
    ALLOWED,
    DENIED,
    DONE,
    FAILED,
    INTENT,
    SUBJECT_ERASE,
    SUBJECT_EXPORT,
    AuditEvent,
    AuditLog,
    AuditLogError,
)
from esg_assets.lib.warehouse.subject_data import account_days, account_rows, erase_account

KEPT_FILES = (
    "The published files are kept: each day's encrypted ratings file (and error log) is a record the firm "
    "keeps to meet a legal obligation, exempt from erasure under GDPR Art. 17(3)(b) and CCPA §1798.105(d), "
    f"and is deleted by the retention job when {RETENTION_DAYS.name} runs out. This command does not rewrite "
    "published files."
)


def account_digest(account_id: str) -> str:
    """What the audit log holds of the account: the SHA-256 of its id (UTF-8), as ``sha256sum`` gives it."""
    return hashlib.sha256(account_id.encode()).hexdigest()


def _account_id(text: str) -> str:
    if not ACCOUNT_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid account id {text!r}: expected 1 to 64 letters, digits, '-', '_' or '.' "
            "(e.g. ACC-0000123)"
        )
    return text


class SubjectCommand:
    """``subject export --account ID [--output PATH|-]`` and ``subject erase --account ID``."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="privacy requests: export or erase what the job holds about one account (audited)",
            description=(
                "Access and erasure requests of a data subject, for callers named in "
                f"{AUTHORIZED_READERS.name} (exit 3 otherwise). Both read the warehouse "
                f"{WAREHOUSE_PATH.name}: every table with an account_id column. Every attempt is recorded in "
                "the audit log with the SHA-256 of the account id, never the id."
            ),
        )
        actions = parser.add_subparsers(metavar="ACTION", required=True)
        export = actions.add_parser(
            "export",
            help="write everything the job holds about the account, as JSON",
            description="Write, as JSON, every row of every warehouse table with an account_id column that "
            "holds the account, and the audit records that name it (normally none). The warehouse is opened "
            "read-only.",
        )
        export.add_argument("--account", required=True, type=_account_id, metavar="ID", help="the account id")
        export.add_argument(
            "--output",
            default="-",
            metavar="PATH|-",
            help="the JSON file (mode 0600), or - for stdout (default)",
        )
        export.set_defaults(subject_action=_export)
        erase = actions.add_parser(
            "erase",
            help="delete the account's rows from every warehouse table, in one transaction",
            description="Delete the account's rows from every warehouse table with an account_id column "
            "(held_ratings included) in one transaction and print the rows deleted per table. The published "
            "files are kept under the legal-obligation exemption until retention deletes them. Needs the "
            "warehouse to itself: not while a run writes it.",
        )
        erase.add_argument("--account", required=True, type=_account_id, metavar="ID", help="the account id")
        erase.set_defaults(subject_action=_erase)
        return parser

    def run(self, args: argparse.Namespace) -> int:
        return args.subject_action(args)


class _NotRecorded(CommandError):
    """The audit log refused a record: nothing more can be recorded about this request."""


class _Trail:
    """The audit records of one request; a request that cannot be recorded is not served."""

    def __init__(self, action: str, account_id: str):
        self.log: AuditLog = audit_log()
        self.caller: Caller = caller_of(self.log.directory)
        self.action, self.digest = action, account_digest(account_id)
        self.naming = _whole_id(account_id)

    def record(self, outcome: str, detail: str) -> None:
        detail = self.naming.sub("<account>", detail)  # an error's text never carries the id into the log
        event = AuditEvent(self.action, outcome, detail=f"account sha256={self.digest}; {detail}")
        try:
            self.log.append(event, self.caller)
        except AuditLogError as error:
            raise _NotRecorded(f"{error}; the request was not served", EXIT_FAILED) from None

    def record_failure(self, error: CommandError) -> None:
        if not isinstance(error, _NotRecorded):
            self.record(FAILED, str(error))

    def authorize(self, what: str) -> None:
        """Let only callers on the allow-list through; a denial is recorded, then exit 3."""
        try:
            readers = AuthorizedReaders.parse(now(AUTHORIZED_READERS))
        except ValueError as error:
            self.record(DENIED, str(error))
            raise CommandError(str(error), EXIT_USAGE) from None
        decision = readers.decide(self.caller)
        if not decision.allowed:
            self.record(DENIED, decision.reason)
            raise CommandError(f"{self.caller.user} may not {what}: {decision.reason}", EXIT_DENIED)


def _export(args: argparse.Namespace) -> int:
    if args.output != "-" and not Path(args.output).absolute().parent.is_dir():
        raise CommandError(f"--output {args.output}: its directory does not exist", EXIT_USAGE)
    trail = _Trail(SUBJECT_EXPORT, args.account)
    trail.authorize("export the data of an account")
    try:
        with warehouse(read_only=True) as connection:
            tables = account_rows(connection, args.account)
    except CommandError as error:
        trail.record_failure(error)
        raise
    records = _audit_records_naming(trail.log, args.account, trail.digest)
    document = export_document(args.account, tables, records)
    text = json.dumps(document, indent=2, ensure_ascii=False, default=_json_value) + "\n"
    rows = sum(len(held) for held in tables.values())
    detail = f"exported {rows} rows ({_per_table({name: len(held) for name, held in tables.items()})})"
    if args.output == "-":
        trail.record(ALLOWED, detail)  # what reaches stdout cannot be taken back: recorded first
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        with atomic_file(args.output) as sink:  # appears only once the export is recorded
            sink.write(text.encode())
            trail.record(ALLOWED, detail)
    except OSError as error:
        raise CommandError(f"cannot write {args.output}: {error.strerror or error}", EXIT_FAILED) from None
    print(f"exported {rows} rows about account {args.account} to {args.output}", file=sys.stderr)
    return 0


def export_document(account_id: str, tables: dict[str, list[dict]], records: list[dict]) -> dict[str, Any]:
    days = sorted(
        {row["partition_date"] for held in tables.values() for row in held if "partition_date" in row}
    )
    if records:
        audit_note = (
            f"{len(records)} audit records name this account, by its id or, for privacy requests, by the "
            "SHA-256 of its id (their records never hold the id itself)."
        )
    else:
        audit_note = (
            "The audit log names this account in no record: it records who published, read or deleted which "
            "file, with staff identities and no account ids."
        )
    return {
        "account_id": account_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": tables,
        "row_counts": {name: len(held) for name, held in tables.items()},
        "days": days,
        "audit_records": records,
        "notes": [
            "tables: every table of the job's warehouse with an account_id column, found in its catalog; "
            "each row whole. Dates and times are ISO 8601, decimals exact strings.",
            "days: the days of those rows. The encrypted ratings file of each such day that retention has "
            "not yet deleted holds the account's row of that day (its error log too when the account did "
            "not end Successful): the same values as above.",
            audit_note,
            "Dagster's run metadata of a day may list this id among the day's failed accounts; it holds no "
            "other data about the account and is not included here.",
        ],
    }


def _erase(args: argparse.Namespace) -> int:
    trail = _Trail(SUBJECT_ERASE, args.account)
    trail.authorize("erase the data of an account")
    try:
        with warehouse(read_only=False) as connection:
            days = account_days(connection, args.account)
            trail.record(INTENT, "erasing its rows from every warehouse table with an account_id column")
            try:
                deleted = erase_account(connection, args.account)
            except duckdb.Error as error:
                raise CommandError(
                    f"nothing was erased (the transaction was rolled back): {str(error).splitlines()[0]}",
                    EXIT_FAILED,
                ) from None
    except CommandError as error:
        trail.record_failure(error)
        raise
    try:
        trail.record(
            DONE, f"deleted {sum(deleted.values())} rows ({_per_table(deleted)}); published files kept"
        )
    except _NotRecorded as error:
        raise CommandError(
            "the rows were erased, but the audit log could not record it (its intent record stands): "
            f"{error}",
            EXIT_FAILED,
        ) from None
    print(f"erased account {args.account} from the warehouse in one transaction:")
    for table, rows in deleted.items():
        print(f"  {table}: {rows} row{'' if rows == 1 else 's'} deleted")
    if days:
        print(
            f"days of its rows, whose published files still hold it: {', '.join(d.isoformat() for d in days)}"
        )
    print(KEPT_FILES)
    print("Remove or anonymise the account in the AMS as well, or the next daily run brings it back.")
    return 0


def _audit_records_naming(log: AuditLog, account_id: str, digest: str) -> list[dict[str, Any]]:
    """Records whose text holds the account id as a whole id, or the SHA-256 of it (earlier requests)."""
    whole_id = _whole_id(account_id)
    return [
        record
        for record in log.records()
        if any(
            isinstance(value, str) and (whole_id.search(value) or digest in value)
            for name, value in record.items()
            if name not in ("hash", "prev")
        )
    ]


def _whole_id(account_id: str) -> re.Pattern[str]:
    # Followed by a '.' that ends a sentence, not one that continues an id ("ACC-1." but not "ACC-1.5").
    return re.compile(
        rf"(?<![{ACCOUNT_ID_CHARACTERS}]){re.escape(account_id)}(?![A-Za-z0-9_-]|\.[{ACCOUNT_ID_CHARACTERS}])"
    )


def _per_table(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {rows}" for table, rows in counts.items()) or "no tables"


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)  # UUIDs, intervals: their text
