"""The ratings file format: writing rows as RFC 4180 CSV (UTF-8, CRLF) and strictly parsing it back."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any, NamedTuple

from esg_assets.core.iso_dates import is_iso_date
from esg_assets.core.ratings.csv_stream import ByteSink, write_csv
from esg_assets.core.ratings.model import ProcessingStatus

HEADER: tuple[str, ...] = (
    "Account ID",
    "Account Name",
    "Overall ESG Score",
    "Environmental Score",
    "Social Score",
    "Governance Score",
    "Primary ESG Focus",
    "Primary Focus Score",
    "Analysis Date",
    "Processing Status",
)
NOT_AVAILABLE = "N/A"
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_SCORE_COLUMNS = frozenset({2, 3, 4, 5, 7})
_ESG_COLUMNS = range(2, 9)  # the six values and the analysis date: all N/A when the account Failed
_FOCUS_COLUMN = 6
_DATE_COLUMN = 8
_STATUSES = frozenset(status.value for status in ProcessingStatus)
_CENT = Decimal("0.01")
_SCORE_TEXT = re.compile(r"-?[0-9]+\.[0-9]{2}")
_MAX_RECORD_CHARS = 1024 * 1024
# One RFC 4180 field: quoted (quotes inside doubled, may hold commas, CR and LF) or plain.
_FIELD = re.compile(r'"((?:[^"]+|"")*+)"|([^",\r\n]*)')
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


class RatingsRow(NamedTuple):
    """One row of the ratings file as values; ``write_ratings_csv`` accepts any tuple in this order."""

    account_id: str
    account_name: str | None
    overall: Decimal | None
    environmental: Decimal | None
    social: Decimal | None
    governance: Decimal | None
    primary_focus: str | None
    primary_focus_score: Decimal | None
    analysis_date: date | None
    processing_status: str


class RatingsCsvError(ValueError):
    """A ratings file breaks the format; the message names the line and the column."""

    def __init__(self, line: int, message: str, column: str | None = None):
        where = f"line {line}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")
        self.line = line
        self.column = column


def neutralise_formula(name: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula."""
    return "'" + name if name.startswith(FORMULA_PREFIXES) else name


def write_ratings_csv(rows: Iterable[tuple], sink: ByteSink) -> int:
    """Write the header and ``rows``, in the order given, to the binary ``sink``; return the row count.

    Rows are encoded in batches of about 64 KiB so memory stays flat whatever the number of rows.
    """
    return write_csv(HEADER, (format_ratings_row(row) for row in rows), sink)


def format_ratings_row(row: tuple) -> list[str]:
    """The ten texts of one row as they appear in the file (before CSV quoting)."""
    if len(row) != len(HEADER):
        # Not the row itself: it holds the account name, and this message can reach the run's log.
        raise ValueError(f"a ratings row has {len(HEADER)} values, got {len(row)}")
    account_id, account_name, *esg_values, status = row
    if not isinstance(account_id, str) or not account_id:
        raise ValueError(f"account id must be a non-empty string, got {account_id!r}")
    if str(status) not in _STATUSES:
        raise ValueError(
            f"account {account_id}: processing status {status!r} is not one of {sorted(_STATUSES)}"
        )
    if account_name is None:
        name = NOT_AVAILABLE
    else:
        name = neutralise_formula(_format_text(account_id, HEADER[1], account_name))
    if status == ProcessingStatus.FAILED:
        return [account_id, name, *[NOT_AVAILABLE] * len(esg_values), str(status)]
    texts = [
        NOT_AVAILABLE if value is None else format_value(account_id, column, value)
        for value, format_value, column in zip(esg_values, _FORMATTERS, HEADER[2:9], strict=True)
    ]
    return [account_id, name, *texts, str(status)]


def _format_score(account_id: str, column: str, value: Any) -> str:
    if not isinstance(value, Decimal):  # a float in particular cannot hold the score the API sent
        raise TypeError(f"account {account_id}: {column} must be a Decimal, not {type(value).__name__}")
    try:
        cents = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(
            f"account {account_id}: {column} {value} cannot be written with two decimals"
        ) from None
    if not cents.is_finite():
        raise ValueError(f"account {account_id}: {column} {value} is not a number")
    if cents.is_zero():
        cents = cents.copy_abs()  # never "-0.00"
    return f"{cents:f}"


def _format_date(account_id: str, column: str, value: Any) -> str:
    # A datetime is a date too, but its time and time zone have no place here.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"account {account_id}: {column} must be a date, not {type(value).__name__}")
    return value.isoformat()  # YYYY-MM-DD, years zero-padded to four digits


def _format_text(account_id: str, column: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"account {account_id}: {column} must be text, not {type(value).__name__}")
    return value


# How each of the six values and the analysis date (columns 2 to 8) is written.
_FORMATTERS = (_format_score,) * 4 + (_format_text, _format_score, _format_date)


def parse_ratings_csv(stream: IO[bytes] | IO[str]) -> Iterator[dict[str, str]]:
    """Yield each row of a ratings file as ``{column: text}`` after checking it strictly.

    Checks: UTF-8 without BOM, the exact header, CRLF after every record, ten fields, scores with exactly
    two decimals or N/A, dates YYYY-MM-DD or N/A, a known status, N/A everywhere for Failed accounts and
    names neutralised against formulas. Raises ``RatingsCsvError`` naming the line and the column.
    A text stream must be opened with ``newline=""``, or its CRLFs are already gone.
    """
    if isinstance(stream.read(0), bytes):
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")  # type: ignore[arg-type]
        try:
            yield from _parse_text(text)
        finally:
            text.detach()  # leave the caller's stream open
    else:
        yield from _parse_text(stream)  # type: ignore[arg-type]


def read_ratings_csv(stream: IO[bytes] | IO[str]) -> Iterator[RatingsRow]:
    """Yield each row of a ratings file as values (Decimal, date, None for N/A), checked as by the parser."""
    for record in parse_ratings_csv(stream):
        texts = [record[column] for column in HEADER]
        values: list[Any] = [None if text == NOT_AVAILABLE else text for text in texts]
        values[0] = texts[0]
        for column in _SCORE_COLUMNS:
            if values[column] is not None:
                values[column] = Decimal(values[column])
        if values[_DATE_COLUMN] is not None:
            values[_DATE_COLUMN] = date.fromisoformat(values[_DATE_COLUMN])
        yield RatingsRow(*values)


def _parse_text(text: IO[str]) -> Iterator[dict[str, str]]:
    records = _records(text)
    first = next(records, None)
    if first is None:
        raise RatingsCsvError(1, "the file is empty; expected the header")
    header = _split_record(*first)
    if header[0].startswith("\ufeff"):
        raise RatingsCsvError(1, "the file starts with a byte order mark; expected UTF-8 without BOM")
    if tuple(header) != HEADER:
        raise RatingsCsvError(1, f"the header is {','.join(header)!r}; expected {','.join(HEADER)!r}")
    for line, record in records:
        yield _check_record(line, _split_record(line, record))


def _check_record(line: int, fields: list[str]) -> dict[str, str]:
    if len(fields) != len(HEADER):
        raise RatingsCsvError(line, f"{len(fields)} fields; expected {len(HEADER)}")
    record = dict(zip(HEADER, fields, strict=True))
    if not fields[0]:
        raise RatingsCsvError(line, "empty account id", HEADER[0])
    if fields[1].startswith(FORMULA_PREFIXES):
        raise RatingsCsvError(
            line, "the name starts with a formula character and is not neutralised", HEADER[1]
        )
    status = fields[9]
    if status not in _STATUSES:
        raise RatingsCsvError(line, f"{status!r} is not one of {', '.join(sorted(_STATUSES))}", HEADER[9])
    for column in _ESG_COLUMNS:
        value = fields[column]
        if value == NOT_AVAILABLE:
            continue
        if status == ProcessingStatus.FAILED:
            raise RatingsCsvError(line, f"{value!r} for a Failed account; expected N/A", HEADER[column])
        if column in _SCORE_COLUMNS and not _SCORE_TEXT.fullmatch(value):
            raise RatingsCsvError(line, f"{value!r} is not a score with two decimals or N/A", HEADER[column])
        if column == _DATE_COLUMN and not is_iso_date(value):
            raise RatingsCsvError(line, f"{value!r} is not a date YYYY-MM-DD or N/A", HEADER[column])
        if column == _FOCUS_COLUMN and not value:
            raise RatingsCsvError(line, "empty; expected a pillar or N/A", HEADER[column])
    return record


def _records(text: IO[str]) -> Iterator[tuple[int, str]]:
    """Yield each record with the number of the line it starts on, its line break included.

    A record goes on past a line break inside a quoted field. In valid CSV a quote either opens or closes
    a quoted field or is doubled inside one, so an odd count of quotes so far means "inside quotes".
    """
    line = 0
    start = 1
    parts: list[str] = []
    size = 0
    inside_quotes = False
    try:
        for piece in text:  # physical lines, split at CRLF, CR or LF
            line += 1
            if not parts:
                start = line
            parts.append(piece)
            size += len(piece)
            inside_quotes ^= piece.count('"') % 2 == 1
            if not inside_quotes:
                yield start, "".join(parts)
                parts, size = [], 0
            elif size > _MAX_RECORD_CHARS:  # a stray quote must not make this read the whole file
                break
    except UnicodeDecodeError:
        raise RatingsCsvError(line + 1, "not valid UTF-8 (at or after this line)") from None
    if parts:
        # An odd quote count: a stray quote or a quoted field never closed. Splitting names which, and where.
        _split_record(start, "".join(parts))
        raise RatingsCsvError(start, "the file ends inside a quoted field")


def _split_record(line: int, record: str) -> list[str]:
    """The fields of one record, by RFC 4180 to the letter (``csv.reader`` is lenient on quotes and CRs)."""
    if '"' not in record and record.endswith("\r\n") and "\r" not in record[:-2] and "\n" not in record[:-2]:
        return record[:-2].split(",")  # the common case, no quoted field: far faster than the loop below
    fields: list[str] = []
    position = 0
    while True:
        match = _FIELD.match(record, position)  # always matches: an unquoted field may be empty
        quoted, plain = match.groups()
        if quoted is not None and not _NEEDS_QUOTES.search(quoted):
            column = HEADER[len(fields)] if len(fields) < len(HEADER) else f"field {len(fields) + 1}"
            raise RatingsCsvError(line, "quoted without holding a comma, quote, CR or LF", column)
        fields.append(plain if quoted is None else quoted.replace('""', '"'))
        position = match.end()
        if record.startswith(",", position):
            position += 1
            continue
        if position == len(record) - 2 and record.endswith("\r\n"):
            return fields
        column = HEADER[len(fields) - 1] if len(fields) <= len(HEADER) else f"field {len(fields)}"
        if position == len(record):
            problem = "the record ends with no line break; expected CRLF"
        elif record[position] == '"' and plain == "":
            problem = "a quoted field is never closed"
        elif record[position] in "\r\n":
            problem = (
                "a bare CR or LF outside quotes; records end with CRLF and only quoted fields hold CR or LF"
            )
        elif quoted is None:
            problem = "a double quote inside an unquoted field"
        else:
            problem = f"{record[position]!r} after the closing quote of a field"
        raise RatingsCsvError(line, problem, column)
