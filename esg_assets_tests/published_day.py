"""A day's files published as the job publishes them (DayPublisher), from synthetic rows, in milliseconds."""

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from esg_assets.access.caller import Caller
from esg_assets.audit.log import AuditLog
from esg_assets.crypto.data_keys import KeySource
from esg_assets.ratings.errors_csv import write_errors_csv
from esg_assets.ratings.ratings_csv import write_ratings_csv
from esg_assets.storage.file_names import errors_file_name, ratings_file_name
from esg_assets.storage.manifest import ERRORS_KIND, RATINGS_KIND, Manifest
from esg_assets.storage.publishing import DayPublisher
from esg_assets.storage.report_store import ReportStore

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


def publish_day(
    store: ReportStore,
    keys: KeySource,
    audit_dir: Path,
    day: date,
    accounts: int = 300,
    run_id: str = "run-1",
) -> Manifest:
    rows = rating_rows(accounts)
    publisher = DayPublisher(store, keys, AuditLog(audit_dir), JOB, day, run_id)
    ratings = publisher.publish_encrypted(
        ratings_file_name(day), RATINGS_KIND, lambda out: write_ratings_csv(rows, out)
    )
    errors = publisher.publish_encrypted(
        errors_file_name(day), ERRORS_KIND, lambda out: write_errors_csv(error_rows(rows), out)
    )
    return publisher.publish_manifest(Counter(row[-1] for row in rows), [ratings, errors])
