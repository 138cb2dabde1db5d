"""The day's error log file: each account that did not end Successful and why (ids only, never names)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import BinaryIO

ERRORS_HEADER = ("Account ID", "Processing Status", "Error", "HTTP Status", "Attempts", "Timestamp")
_FLUSH_CHARS = 64 * 1024


def write_errors_csv(rows: Iterable[tuple], sink: BinaryIO) -> int:
    """Rows are (account_id, status, error, http_status, attempts, fetched_at); RFC 4180 like the ratings file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(ERRORS_HEADER)
    count = 0
    for account_id, status, error, http_status, attempts, fetched_at in rows:
        writer.writerow(
            [account_id, status, error or "", "" if http_status is None else http_status, attempts, _utc(fetched_at)]
        )
        count += 1
        if buffer.tell() >= _FLUSH_CHARS:
            sink.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    sink.write(buffer.getvalue().encode("utf-8"))
    return count


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
