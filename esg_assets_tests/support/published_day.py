"""A day's set of files published as the job publishes them (DaySet), from synthetic rows, in milliseconds."""

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from esg_assets.core.check_report import CheckOutcome
from esg_assets.core.file_names import errors_file_name, ratings_file_name, summary_file_name
from esg_assets.core.ratings.errors_csv import write_errors_csv
from esg_assets.core.ratings.ratings_csv import write_ratings_csv
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.report_store.manifest import ERRORS_KIND, RATINGS_KIND, SUMMARY_KIND, Manifest
from esg_assets.lib.report_store.publishing import DaySet
from esg_assets.lib.report_store.store import ReportStore

JOB = Caller("esg-job", frozenset({"esg-job"}), "batch-host", "esg-job")


def rating_rows(count: int) -> list[tuple]:
    """Every fifth account Failed, the rest Successful; names that need quoting now and then."""
    rows = []
    for number in range(1, count + 1):
        account_id = f"ACC-{number:07d}"
        name = f'Harbor "Pension", Trust {number}' if number % 7 == 0 else f"Harbor Pension Trust {number}"
        if number % 5 == 0:
            rows.append((account_id, name, None, None, None, None, None, None, None, "Failed"))
        else:
            score = Decimal("71.25")
            rows.append(
                (
                    account_id,
                    name,
                    score,
                    score,
                    score,
                    score,
                    "Social",
                    score,
                    date(2026, 11, 19),
                    "Successful",
                )
            )
    return rows


def error_rows(rows: list[tuple]) -> list[tuple]:
    moment = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    return [(row[0], row[-1], "HTTP 404", 404, 1, moment) for row in rows if row[-1] != "Successful"]


def check_report(failed: int, accounts: int) -> list[CheckOutcome]:
    """A day's four checks as the job records them: ``failure_rate`` failed (every fifth account), the rest
    passed."""
    rate = failed / accounts if accounts else 0.0
    return [
        CheckOutcome("failure_rate", "esg_ratings", rate <= 0.05, "ERROR", False, f"{failed} of {accounts}",
                     {"failed": failed, "accounts": accounts, "failure_rate": rate, "threshold": 0.05}),
        CheckOutcome("completeness", "ratings_file", True, "ERROR", True, "every account once",
                     {"rows": accounts, "missing_accounts": 0, "examples": "none"}),
        CheckOutcome("file_format", "ratings_file", True, "ERROR", True, "RFC 4180",
                     {"problem": "none", "rows_read": accounts}),
        CheckOutcome("reconciliation", "ratings_file", True, "ERROR", False, "sample matches",
                     {"compared": 20, "mismatches": 0, "not_refetched": 0, "details": "none"}),
    ]  # fmt: skip


def publish_day(
    store: ReportStore,
    keys: Keyring,
    audit: Path | AuditLog,
    day: date,
    accounts: int = 300,
    run_id: str = "run-1",
    rows: list[tuple] | None = None,
    with_checks: bool = True,
) -> Manifest:
    """Publish a set for ``day``: the file of ``rows`` (else ``accounts`` synthetic ones), errors, summary.

    ``with_checks=False``: a manifest as written before manifests carried the check report (version 2).
    """
    rows = rating_rows(accounts) if rows is None else rows
    audit = audit if isinstance(audit, AuditLog) else AuditLog(audit)
    day_set = DaySet(store, keys, audit, JOB, day, run_id)
    day_set.stage_encrypted(ratings_file_name(day), RATINGS_KIND, lambda out: write_ratings_csv(rows, out))
    day_set.stage_encrypted(
        errors_file_name(day), ERRORS_KIND, lambda out: write_errors_csv(error_rows(rows), out)
    )
    day_set.stage_plain(summary_file_name(day, "json"), SUMMARY_KIND, b'{"accounts": %d}\n' % accounts)
    counts = Counter(row[-1] for row in rows)
    checks = check_report(counts["Failed"], len(rows)) if with_checks else None
    return day_set.commit(day_set.manifest(counts, checks))
