"""The day's error log file: each account that did not end Successful and why (ids only, never names)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from esg_assets.core.ratings.csv_stream import ByteSink, write_csv

ERRORS_HEADER = ("Account ID", "Processing Status", "Error", "HTTP Status", "Attempts", "Timestamp")


def write_errors_csv(rows: Iterable[tuple], sink: ByteSink) -> int:
    """Rows (account_id, status, error, http_status, attempts, fetched_at); RFC 4180 like the ratings file."""
    return write_csv(
        ERRORS_HEADER,
        (
            [
                account_id,
                status,
                error or "",
                "" if http_status is None else http_status,
                attempts,
                _utc(fetched_at),
            ]
            for account_id, status, error, http_status, attempts, fetched_at in rows
        ),
        sink,
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
