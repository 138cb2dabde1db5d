"""How the day's ratings fetch went: duration, request rate, retries, 429s and the 304s that saved work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from esg_assets.lib.warehouse.run_statistics import FetchRunStatistics, fetch_runs_of


@dataclass(frozen=True)
class RunPerformance:
    fetch: FetchRunStatistics
    this_run: bool  # False: this run did not fetch (e.g. only the summary was rebuilt); the day's last fetch
    run_seconds: float | None  # this run from its start to the summary; None when not known

    @property
    def fetch_seconds(self) -> float:
        return (self.fetch.finished_at - self.fetch.started_at).total_seconds()


def build_run_performance(
    connection: duckdb.DuckDBPyConnection,
    day: date,
    run_id: str,
    run_started_at: datetime | None,
    now: datetime,
) -> RunPerformance | None:
    """This run's ratings fetch, or else the day's latest one; None when the day was never fetched."""
    fetch = fetch_runs_of(connection, day, run_id)
    this_run = fetch is not None
    if fetch is None:
        row = connection.execute(
            "SELECT * FROM ratings_fetch_runs WHERE partition_date = ? ORDER BY finished_at DESC LIMIT 1",
            [day],
        ).fetchone()
        if row is None:
            return None
        fetch = FetchRunStatistics(*row)
    run_seconds = (now - run_started_at).total_seconds() if run_started_at else None
    return RunPerformance(fetch=fetch, this_run=this_run, run_seconds=run_seconds)
