"""The day's ratings in the warehouse: what is left to fetch, batched result writes, and the file's rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date

import duckdb
import pandas as pd

from esg_assets.core.ratings.model import FetchTask, ProcessingStatus, RatingResult, RatingValues
from esg_assets.lib.warehouse.transactions import transaction

TODO_TABLE = "ratings_to_fetch"
# The few accounts to fetch whose held rating has unusable values, and why: apart from TODO_TABLE, where a
# column empty for almost every account would cost each account its bytes in memory (temp tables live there).
HELD_PROBLEMS_TABLE = "held_problems_to_fetch"
VALUE_COLUMNS = (
    "overall",
    "environmental",
    "social",
    "governance",
    "primary_focus",
    "primary_focus_score",
    "analysis_date",
)


@dataclass(frozen=True)
class FetchPlan:
    accounts_total: int  # accounts in the day's snapshot
    to_fetch: int  # accounts this run asks the API for
    resumed: int  # accounts kept from an earlier run of the day (final result already stored)
    with_etag: int  # accounts asked conditionally (If-None-Match)


class UnknownAccountsError(ValueError):
    """Accounts asked for by id are not in the day's snapshot."""


def plan_fetch(
    connection: duckdb.DuckDBPyConnection,
    day: date,
    *,
    full_refresh: bool = False,
    only_accounts: Sequence[str] | None = None,
) -> FetchPlan:
    """Decide which accounts to fetch and stage them, with the rating each one already holds.

    By default the accounts of the day that already have a final result (Successful or Partial) are skipped,
    so a run that was killed resumes where it stopped and a re-run retries only Failed accounts.
    Each staged account carries the latest ETag and rating held for it (from any day), for a conditional
    request.
    """
    # Rows of accounts that left the day's snapshot (a re-walked AMS list) no longer belong to the day.
    connection.execute(
        """
        DELETE FROM esg_ratings r WHERE r.partition_date = $day AND NOT EXISTS (
            SELECT 1 FROM account_snapshots s WHERE s.partition_date = $day AND s.account_id = r.account_id)
        """,
        {"day": day},
    )
    (accounts_total,) = connection.execute(
        "SELECT count(*) FROM account_snapshots WHERE partition_date = ?", [day]
    ).fetchone()

    connection.execute("CREATE OR REPLACE TEMP TABLE requested_accounts (account_id VARCHAR)")
    if only_accounts is not None:
        requested = pd.DataFrame({"account_id": sorted(set(only_accounts))})
        connection.register("requested_frame", requested)
        try:
            connection.execute("INSERT INTO requested_accounts SELECT account_id FROM requested_frame")
        finally:
            connection.unregister("requested_frame")
        unknown = [
            account_id
            for (account_id,) in connection.execute(
                """
                SELECT account_id FROM requested_accounts q WHERE NOT EXISTS (
                    SELECT 1 FROM account_snapshots s
                    WHERE s.partition_date = ? AND s.account_id = q.account_id)
                ORDER BY account_id
                """,
                [day],
            ).fetchall()
        ]
        if unknown:
            raise UnknownAccountsError(
                f"{len(unknown)} requested account(s) are not active accounts of {day.isoformat()}: "
                + ", ".join(unknown[:20])
                + (" ..." if len(unknown) > 20 else "")
            )

    keep_final = not full_refresh and only_accounts is None
    # Conditions are left out rather than switched off with a parameter, so DuckDB plans plain semi- and
    # anti-joins: those spill to disk under the memory limit. No ORDER BY or window either, for the same
    # reason; accounts are fetched in the table's row order (see iter_fetch_tasks).
    only_requested = ""
    if only_accounts is not None:
        only_requested = "AND s.account_id IN (SELECT account_id FROM requested_accounts)"
    skip_final = (
        """AND NOT EXISTS (
            SELECT 1 FROM esg_ratings r
            WHERE r.partition_date = $day AND r.account_id = s.account_id
              AND r.processing_status IN ('Successful', 'Partial'))"""
        if keep_final
        else ""
    )
    values = ", ".join(f"h.{column}" for column in VALUE_COLUMNS)
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {TODO_TABLE} AS
        WITH wanted AS (
            SELECT s.account_id FROM account_snapshots s
            WHERE s.partition_date = $day {only_requested} {skip_final}
        )
        SELECT w.account_id, h.etag, {values}
        FROM wanted w LEFT JOIN held_ratings h USING (account_id)
        """,
        {"day": day},
    )
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {HELD_PROBLEMS_TABLE} AS
        SELECT t.account_id, h.problems
        FROM {TODO_TABLE} t JOIN held_ratings h USING (account_id)
        WHERE h.problems IS NOT NULL
        """
    )
    to_fetch, with_etag = connection.execute(f"SELECT count(*), count(etag) FROM {TODO_TABLE}").fetchone()
    resumed = accounts_total - to_fetch if keep_final else 0
    return FetchPlan(accounts_total=accounts_total, to_fetch=to_fetch, resumed=resumed, with_etag=with_etag)


def iter_fetch_tasks(connection: duckdb.DuckDBPyConnection, batch_size: int) -> Iterator[list[FetchTask]]:
    """The staged accounts in batches, so only one batch is in memory at a time."""
    (total,) = connection.execute(f"SELECT count(*) FROM {TODO_TABLE}").fetchone()
    # A fresh table's row ids run from 0 to total - 1: a range of them is read without scanning the rest.
    for first in range(0, total, batch_size):
        rows = connection.execute(
            f"""
            SELECT t.account_id, t.etag, {", ".join(f"t.{c}" for c in VALUE_COLUMNS)}, p.problems
            FROM (SELECT rowid AS position, * FROM {TODO_TABLE} WHERE rowid BETWEEN ? AND ?) t
            LEFT JOIN {HELD_PROBLEMS_TABLE} p USING (account_id)
            ORDER BY t.position
            """,
            [first, first + batch_size - 1],
        ).fetchall()
        yield [_fetch_task(row) for row in rows]


def _fetch_task(row: tuple) -> FetchTask:
    account_id, etag, *held, problems = row
    if etag is None:
        return FetchTask(account_id=account_id)
    values = RatingValues(*held)
    return FetchTask(
        account_id=account_id, etag=etag, held=replace(values, problems=_held_problems(values, problems))
    )


def _held_problems(values: RatingValues, problems: str | None) -> tuple[str, ...]:
    """Why the held values are not usable, as stored with them: one text, so the reason reads as it did.

    A rating held before the reasons were kept has none: each unusable value is then named, without its why.
    """
    if problems:
        return (problems,)
    names = (*VALUE_COLUMNS[:6], "analysis_date")
    held = (*values.six_values, values.analysis_date)
    return tuple(f"{name}: not usable (reason not kept)" for name, value in zip(names, held) if value is None)


def write_results(
    connection: duckdb.DuckDBPyConnection, day: date, run_id: str, results: Sequence[RatingResult]
) -> None:
    """Replace the rows of these accounts for the day, in one transaction (one commit per batch)."""
    if not results:
        return
    with staged_results(connection, day, run_id, results) as batch:
        with transaction(connection):
            apply_results(connection, day, batch)


# The columns of a stored result, as esg_ratings has them, then why its unusable values are unusable.
RESULT_COLUMNS_DDL = """
    partition_date DATE NOT NULL, account_id VARCHAR NOT NULL,
    overall DECIMAL(5, 2), environmental DECIMAL(5, 2), social DECIMAL(5, 2), governance DECIMAL(5, 2),
    primary_focus VARCHAR, primary_focus_score DECIMAL(5, 2), analysis_date DATE,
    processing_status VARCHAR NOT NULL, error_reason VARCHAR, attempts INTEGER NOT NULL, http_status INTEGER,
    etag VARCHAR, not_modified BOOLEAN NOT NULL, fetched_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL,
    problems VARCHAR
"""


@contextmanager
def staged_results(
    connection: duckdb.DuckDBPyConnection, day: date, run_id: str, results: Sequence[RatingResult]
) -> Iterator[str]:
    """The results as a temp table shaped like RESULT_COLUMNS_DDL; yields its name, drops it after."""
    frame = pd.DataFrame(
        {
            "account_id": [r.account_id for r in results],
            # Decimals travel as text and are cast by DuckDB, so no value ever passes through a binary float.
            **{
                column: [_text(getattr(r.values, column)) if r.values else None for r in results]
                for column in VALUE_COLUMNS
            },
            "problems": [_problems(r) for r in results],
            "processing_status": [r.status.value for r in results],
            "error_reason": [r.error_reason for r in results],
            "attempts": [r.attempts for r in results],
            "http_status": pd.array([r.http_status for r in results], dtype="Int64"),
            "etag": [r.etag for r in results],
            "not_modified": [r.not_modified for r in results],
            "fetched_at": pd.to_datetime([r.fetched_at for r in results], utc=True),
        },
        dtype=object,
    )
    connection.register("result_frame", frame)
    try:
        connection.execute(
            """
            CREATE OR REPLACE TEMP TABLE result_batch AS
            SELECT $day AS partition_date, account_id,
                   CAST(overall AS DECIMAL(5, 2)) AS overall,
                   CAST(environmental AS DECIMAL(5, 2)) AS environmental,
                   CAST(social AS DECIMAL(5, 2)) AS social, CAST(governance AS DECIMAL(5, 2)) AS governance,
                   primary_focus, CAST(primary_focus_score AS DECIMAL(5, 2)) AS primary_focus_score,
                   CAST(analysis_date AS DATE) AS analysis_date, processing_status, error_reason,
                   CAST(attempts AS INTEGER) AS attempts, CAST(http_status AS INTEGER) AS http_status,
                   etag, CAST(not_modified AS BOOLEAN) AS not_modified,
                   CAST(fetched_at AS TIMESTAMPTZ) AS fetched_at,
                   $run_id AS run_id, problems
            FROM result_frame
            """,
            {"day": day, "run_id": run_id},
        )
        yield "result_batch"
    finally:
        connection.unregister("result_frame")
        connection.execute("DROP TABLE IF EXISTS result_batch")


def apply_results(connection: duckdb.DuckDBPyConnection, day: date, source: str) -> None:
    """Put the day's results of ``source`` (a table shaped like RESULT_COLUMNS_DDL) into esg_ratings, and
    each account's rating with an ETag into held_ratings; the caller holds the transaction."""
    connection.execute(
        "DELETE FROM esg_ratings "
        f"WHERE partition_date = ? AND account_id IN (SELECT account_id FROM {source})",
        [day],
    )
    connection.execute(f"INSERT INTO esg_ratings BY NAME SELECT * EXCLUDE (problems) FROM {source}")
    # What each account with an ETag now holds, for the next day's conditional request (a 304 keeps the
    # values). A re-run of an earlier day leaves alone the rating a later day already holds. (Filtering
    # the later days' few rows first: an anti-join with the whole table slowed every commit;
    # docs/performance.md.)
    connection.execute(
        "DELETE FROM held_ratings WHERE partition_date <= $day "
        f"AND account_id IN (SELECT account_id FROM {source} WHERE etag IS NOT NULL)",
        {"day": day},
    )
    connection.execute(
        f"""
        INSERT INTO held_ratings (account_id, partition_date, etag, {", ".join(VALUE_COLUMNS)},
                                  fetched_at, problems)
        SELECT b.account_id, b.partition_date, b.etag, {", ".join(f"b.{c}" for c in VALUE_COLUMNS)},
               b.fetched_at, b.problems
        FROM {source} b
        WHERE b.etag IS NOT NULL
          AND b.account_id NOT IN (SELECT account_id FROM held_ratings WHERE partition_date > $day)
        """,
        {"day": day},
    )


def _problems(result: RatingResult) -> str | None:
    """What is held with a rating: why its unusable values are unusable, for a later 304 to reuse."""
    if result.values is None or not result.values.problems:
        return None
    return "; ".join(result.values.problems)


def _text(value) -> str | None:
    return None if value is None else str(value)


def status_counts(connection: duckdb.DuckDBPyConnection, day: date) -> dict[str, int]:
    counts = {status.value: 0 for status in ProcessingStatus}
    for status, count in connection.execute(
        "SELECT processing_status, count(*) FROM esg_ratings WHERE partition_date = ? GROUP BY 1", [day]
    ).fetchall():
        counts[status] = count
    return counts


# DuckDB keeps a query's whole result in memory until it is read, so the day's rows are read a range of
# account ids at a time: memory then stays flat however many accounts the day has.
ID_RANGE_SIZE = 20_000

_FILE_ROWS = """
SELECT s.account_id, s.account_name, r.overall, r.environmental, r.social, r.governance,
       r.primary_focus, r.primary_focus_score, r.analysis_date, r.processing_status
FROM account_snapshots s JOIN esg_ratings r
  ON r.partition_date = s.partition_date AND r.account_id = s.account_id
WHERE s.partition_date = $day AND s.account_id > $after AND s.account_id <= $up_to
  AND r.account_id > $after AND r.account_id <= $up_to
ORDER BY s.account_id
"""

_ERROR_ROWS = """
SELECT r.account_id, r.processing_status, r.error_reason, r.http_status, r.attempts, r.fetched_at
FROM account_snapshots s JOIN esg_ratings r
  ON r.partition_date = s.partition_date AND r.account_id = s.account_id
WHERE s.partition_date = $day AND s.account_id > $after AND s.account_id <= $up_to
  AND r.account_id > $after AND r.account_id <= $up_to AND r.processing_status <> 'Successful'
ORDER BY s.account_id
"""

_SNAPSHOT_IDS = """
SELECT account_id FROM account_snapshots
WHERE partition_date = $day AND account_id > $after AND account_id <= $up_to
ORDER BY account_id
"""


def account_id_ranges(
    connection: duckdb.DuckDBPyConnection, day: date, size: int
) -> Iterator[tuple[str, str]]:
    """Consecutive ranges ``(after, up_to]`` of the day's account ids, ``size`` ids each, in id order."""
    # A window over the ids alone: a few bytes an account, where one over the file's rows would hold them all.
    bounds = connection.execute(
        """
        SELECT account_id FROM (
            SELECT account_id, row_number() OVER (ORDER BY account_id) AS position, count(*) OVER () AS total
            FROM account_snapshots WHERE partition_date = $day)
        WHERE position % $size = 0 OR position = total
        ORDER BY account_id
        """,
        {"day": day, "size": size},
    ).fetchall()
    after = ""  # account ids are never empty, so every id sorts after it
    for (up_to,) in bounds:
        yield after, up_to
        after = up_to


def _rows_by_id_range(
    connection: duckdb.DuckDBPyConnection, day: date, query: str, size: int = ID_RANGE_SIZE
) -> Iterator[tuple]:
    for after, up_to in account_id_ranges(connection, day, size):
        yield from connection.execute(query, {"day": day, "after": after, "up_to": up_to}).fetchall()


def iter_file_rows(
    connection: duckdb.DuckDBPyConnection, day: date, size: int = ID_RANGE_SIZE
) -> Iterator[tuple]:
    """The file's rows in Account ID order, read from DuckDB a range of accounts at a time."""
    return _rows_by_id_range(connection, day, _FILE_ROWS, size)


def iter_error_rows(
    connection: duckdb.DuckDBPyConnection, day: date, size: int = ID_RANGE_SIZE
) -> Iterator[tuple]:
    """The day's accounts that did not end Successful, in Account ID order, for the error log file."""
    return _rows_by_id_range(connection, day, _ERROR_ROWS, size)


def iter_snapshot_ids(
    connection: duckdb.DuckDBPyConnection, day: date, size: int = ID_RANGE_SIZE
) -> Iterator[str]:
    """The day's active account ids in file order, a range at a time."""
    for (account_id,) in _rows_by_id_range(connection, day, _SNAPSHOT_IDS, size):
        yield account_id


def unrated_accounts(connection: duckdb.DuckDBPyConnection, day: date) -> int:
    """Accounts of the day's snapshot without a stored result (the ratings step has not finished)."""
    (missing,) = connection.execute(
        """
        SELECT count(*) FROM account_snapshots s
        WHERE s.partition_date = $day AND NOT EXISTS (
            SELECT 1 FROM esg_ratings r WHERE r.partition_date = $day AND r.account_id = s.account_id)
        """,
        {"day": day},
    ).fetchone()
    return missing


def reconciliation_sample(connection: duckdb.DuckDBPyConnection, day: date, size: int) -> list[str]:
    """A random sample of the day's accounts that have a rating (Failed rows hold no values to compare)."""
    if size <= 0:
        return []
    return [
        account_id
        for (account_id,) in connection.execute(
            "SELECT account_id FROM esg_ratings WHERE partition_date = ? AND processing_status <> 'Failed' "
            "ORDER BY random() LIMIT ?",
            [day, size],
        ).fetchall()
    ]
