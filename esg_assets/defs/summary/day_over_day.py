"""Change since the previous day in the warehouse: new and closed accounts, biggest Overall score movers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import duckdb

from esg_assets.defs.summary.daily_summary import exact_average

# Ids listed per change (new, closed); the counts are always exact.
CHANGED_ACCOUNTS_LISTED = 20
MOVERS_LISTED = 10


@dataclass(frozen=True)
class ScoreMover:
    account_id: str
    previous: Decimal
    current: Decimal

    @property
    def change(self) -> Decimal:
        return self.current - self.previous


@dataclass(frozen=True)
class DayOverDay:
    """``previous_date`` is the latest earlier day with a snapshot (None: this is the first day)."""

    previous_date: date | None
    new_accounts: int = 0
    closed_accounts: int = 0
    new_account_ids: tuple[str, ...] = ()  # the first CHANGED_ACCOUNTS_LISTED by id
    closed_account_ids: tuple[str, ...] = ()
    movers: tuple[ScoreMover, ...] = ()  # largest Overall change first
    previous_total_accounts: int = 0
    previous_success_rate: float | None = None
    previous_average_overall: Decimal | None = None


def build_day_over_day(connection: duckdb.DuckDBPyConnection, day: date) -> DayOverDay:
    # The latest earlier snapshot rather than strictly day - 1: after a day without a run, the comparison is
    # with the last day the firm actually received.
    (previous,) = connection.execute(
        "SELECT max(partition_date) FROM account_snapshots WHERE partition_date < ?", [day]
    ).fetchone()
    if previous is None:
        return DayOverDay(previous_date=None)
    days = {"day": day, "previous": previous}
    new_total, new_ids = _accounts_only_in(connection, days, "day", "previous")
    closed_total, closed_ids = _accounts_only_in(connection, days, "previous", "day")
    total, successful, overall_sum, overall_count = connection.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE r.processing_status = 'Successful'),
               sum(r.overall) FILTER (WHERE r.processing_status <> 'Failed'),
               count(r.overall) FILTER (WHERE r.processing_status <> 'Failed')
        FROM account_snapshots s JOIN esg_ratings r
          ON r.partition_date = s.partition_date AND r.account_id = s.account_id
        WHERE s.partition_date = $previous
        """,
        {"previous": previous},
    ).fetchone()
    return DayOverDay(
        previous_date=previous,
        new_accounts=new_total,
        closed_accounts=closed_total,
        new_account_ids=new_ids,
        closed_account_ids=closed_ids,
        movers=_movers(connection, days),
        previous_total_accounts=total,
        previous_success_rate=successful / total if total else None,
        previous_average_overall=exact_average(overall_sum, overall_count),
    )


def _accounts_only_in(
    connection: duckdb.DuckDBPyConnection, days: dict, present: str, absent: str
) -> tuple[int, tuple[str, ...]]:
    only_in = f"""
        FROM account_snapshots s
        WHERE s.partition_date = ${present} AND NOT EXISTS (
            SELECT 1 FROM account_snapshots o
            WHERE o.partition_date = ${absent} AND o.account_id = s.account_id)
    """
    (total,) = connection.execute(f"SELECT count(*) {only_in}", days).fetchone()
    ids = connection.execute(
        f"SELECT s.account_id {only_in} ORDER BY s.account_id LIMIT {CHANGED_ACCOUNTS_LISTED}", days
    ).fetchall()
    return total, tuple(account_id for (account_id,) in ids)


def _movers(connection: duckdb.DuckDBPyConnection, days: dict) -> tuple[ScoreMover, ...]:
    """Accounts of both days' snapshots whose Overall score changed the most (either way)."""
    rows = connection.execute(
        f"""
        SELECT t.account_id, p.overall, t.overall
        FROM account_snapshots s
        JOIN esg_ratings t ON t.partition_date = s.partition_date AND t.account_id = s.account_id
        JOIN esg_ratings p ON p.partition_date = $previous AND p.account_id = s.account_id
        WHERE s.partition_date = $day
          AND EXISTS (SELECT 1 FROM account_snapshots o
                      WHERE o.partition_date = $previous AND o.account_id = s.account_id)
          AND t.overall IS NOT NULL AND p.overall IS NOT NULL AND t.overall <> p.overall
        ORDER BY abs(t.overall - p.overall) DESC, t.account_id
        LIMIT {MOVERS_LISTED}
        """,
        days,
    ).fetchall()
    return tuple(ScoreMover(account_id, previous, current) for account_id, previous, current in rows)
