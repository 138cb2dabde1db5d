"""Writes RFC 4180 CSV (UTF-8, CRLF, minimal quoting) to a binary sink in ~64 KiB pieces, any row count."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Protocol

_FLUSH_CHARS = 64 * 1024


class ByteSink(Protocol):
    """Where CSV is written: a binary file, or the writer of an encrypted stream."""

    def write(self, data: bytes, /) -> object: ...


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]], sink: ByteSink) -> int:
    """Write ``header`` and ``rows`` (already formatted), returning the number of rows."""
    buffer = io.StringIO()
    # QUOTE_MINIMAL quotes exactly the fields holding a comma, a double quote, CR or LF, and doubles quotes.
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if buffer.tell() >= _FLUSH_CHARS:
            sink.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    sink.write(buffer.getvalue().encode("utf-8"))
    return count
