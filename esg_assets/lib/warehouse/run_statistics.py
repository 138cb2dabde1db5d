"""Statistics of each run in the warehouse: the ratings step's request counts and the run history."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime

import duckdb


@dataclass(frozen=True)
class FetchRunStatistics:
    """What one materialization of ``esg_ratings`` asked of the API."""

    partition_date: date
    run_id: str
    started_at: datetime
    finished_at: datetime
    accounts_total: int
    accounts_fetched: int
    accounts_resumed: int
    api_requests: int
    retries: int
    throttled: int
    not_modified: int
    requests_per_second: float


@dataclass(frozen=True)
class RunHistoryRow:
    """One materialization of the day's graph, as kept in ``run_history``."""

    partition_date: date
    run_id: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    accounts: int
    successful: int
    partial: int
    failed: int
    api_requests: int
    retries: int
    throttled: int
    not_modified: int
    throughput_per_second: float
    cpu_seconds: float | None = None  # the run worker's user + system CPU time
    peak_rss_bytes: int | None = None  # the run worker's peak resident memory
    warehouse_size_bytes: int | None = None  # the DuckDB file after the run
    spill_bytes: int | None = None  # the largest DuckDB spill (temp directory) seen in the run


def _insert(connection: duckdb.DuckDBPyConnection, table: str, row) -> None:
    names = [field.name for field in fields(row)]
    connection.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        list(asdict(row).values()),
    )


def record_fetch_run(connection: duckdb.DuckDBPyConnection, run: FetchRunStatistics) -> None:
    _insert(connection, "ratings_fetch_runs", run)


def record_run_history(connection: duckdb.DuckDBPyConnection, row: RunHistoryRow) -> None:
    connection.execute(
        "DELETE FROM run_history WHERE partition_date = ? AND run_id = ?", [row.partition_date, row.run_id]
    )
    _insert(connection, "run_history", row)


def record_warehouse_size(connection: duckdb.DuckDBPyConnection, day: date, run_id: str, size: int) -> None:
    connection.execute(
        "UPDATE run_history SET warehouse_size_bytes = ? WHERE partition_date = ? AND run_id = ?",
        [size, day, run_id],
    )


def fetch_runs_of(connection: duckdb.DuckDBPyConnection, day: date, run_id: str) -> FetchRunStatistics | None:
    row = connection.execute(
        "SELECT * FROM ratings_fetch_runs WHERE partition_date = ? AND run_id = ? "
        "ORDER BY finished_at DESC LIMIT 1",
        [day, run_id],
    ).fetchone()
    return FetchRunStatistics(*row) if row else None
