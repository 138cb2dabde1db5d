"""The day's snapshot of active accounts: AMS pages staged as they arrive, then de-duplicated in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from esg_assets.lib.firm_api.ams import AmsPage
from esg_assets.lib.warehouse.transactions import transaction

_STAGING = "ams_rows_staging"


@dataclass(frozen=True)
class SnapshotCounts:
    rows_received: int
    active_accounts: int
    duplicates_dropped: int
    not_active: int


class SnapshotWriter:
    """Stages every row of the AMS walk, then keeps one row per account: the latest ``updated_at`` wins.

    The status filter applies after de-duplication, so a later row saying ``closed`` removes the account.
    Only the page being staged is held in memory.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, day: date):
        self._connection = connection
        self._day = day
        self._sequence = 0
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {_STAGING} ("
            " sequence BIGINT, account_id VARCHAR, account_name VARCHAR, status VARCHAR,"
            " updated_at TIMESTAMPTZ)"
        )

    def stage(self, page: AmsPage) -> None:
        if not page.rows:
            return
        frame = pd.DataFrame(
            {
                "sequence": range(self._sequence, self._sequence + len(page.rows)),
                "account_id": [row.account_id for row in page.rows],
                "account_name": [row.account_name for row in page.rows],
                "status": [row.status for row in page.rows],
                "updated_at": pd.to_datetime([row.updated_at for row in page.rows], utc=True),
            }
        )
        self._sequence += len(page.rows)
        self._connection.register("ams_page", frame)
        try:
            self._connection.execute(f"INSERT INTO {_STAGING} SELECT * FROM ams_page")
        finally:
            self._connection.unregister("ams_page")

    def discard_staged(self) -> None:
        """Drop every row staged so far: the walk restarts, and only a complete walk makes the snapshot."""
        self._connection.execute(f"DELETE FROM {_STAGING}")
        self._sequence = 0

    def replace_snapshot(self) -> SnapshotCounts:
        """Swap the day's snapshot for the de-duplicated staged rows, in one transaction."""
        connection = self._connection
        with transaction(connection):
            connection.execute("DELETE FROM account_snapshots WHERE partition_date = ?", [self._day])
            # The latest row per account: no later row (by updated_at, a missing one ranking lowest, then
            # arrival) exists for it. An anti-join rather than a window or an arg_max, because DuckDB's hash
            # join spills to disk under the memory limit, where those keep every account in memory.
            connection.execute(
                f"""
                INSERT INTO account_snapshots
                SELECT ?, s.account_id, s.account_name, s.updated_at, now()
                FROM {_STAGING} s
                WHERE s.status = 'active' AND NOT EXISTS (
                    SELECT 1 FROM {_STAGING} t
                    WHERE t.account_id = s.account_id
                      AND (coalesce(t.updated_at, '-infinity') > coalesce(s.updated_at, '-infinity')
                           OR (coalesce(t.updated_at, '-infinity') = coalesce(s.updated_at, '-infinity')
                               AND t.sequence > s.sequence)))
                """,
                [self._day],
            )
            received, distinct = connection.execute(
                f"SELECT count(*), count(DISTINCT account_id) FROM {_STAGING}"
            ).fetchone()
            (active,) = connection.execute(
                "SELECT count(*) FROM account_snapshots WHERE partition_date = ?", [self._day]
            ).fetchone()
        connection.execute(f"DROP TABLE {_STAGING}")
        return SnapshotCounts(
            rows_received=received,
            active_accounts=active,
            duplicates_dropped=received - distinct,
            not_active=distinct - active,
        )
