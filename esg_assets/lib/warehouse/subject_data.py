"""One account's rows in every warehouse table with an ``account_id`` column: read them, or erase them."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from esg_assets.lib.warehouse.transactions import transaction


def account_tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Every warehouse table keyed by account_id, from the catalog, so that a table added later is covered."""
    rows = connection.execute(
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.column_name = 'account_id' AND c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
        "AND c.table_catalog = current_database() AND t.table_catalog = current_database() "
        "ORDER BY c.table_name"
    ).fetchall()
    return [name for (name,) in rows]


def account_rows(connection: duckdb.DuckDBPyConnection, account_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each such table's rows of ``account_id``, every column, stably ordered (tables with none included)."""
    held = {}
    for table in account_tables(connection):
        cursor = connection.execute(
            f"SELECT * FROM {_quoted(table)} WHERE account_id = ? ORDER BY ALL", [account_id]
        )
        columns = [column[0] for column in cursor.description]
        held[table] = [dict(zip(columns, row)) for row in cursor.fetchall()]
    return held


def account_days(connection: duckdb.DuckDBPyConnection, account_id: str) -> list[date]:
    """The days (partition_date) of the account's rows in any table that has both columns."""
    tables = [
        table
        for table in account_tables(connection)
        if connection.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ? "
            "AND column_name = 'partition_date'",
            [table],
        ).fetchone()[0]
    ]
    if not tables:
        return []
    union = " UNION ".join(
        f"SELECT partition_date FROM {_quoted(table)} WHERE account_id = $1" for table in tables
    )
    days = connection.execute(f"SELECT DISTINCT * FROM ({union}) ORDER BY 1", [account_id]).fetchall()
    return [day for (day,) in days]


def erase_account(connection: duckdb.DuckDBPyConnection, account_id: str) -> dict[str, int]:
    """Delete the account's rows from every such table in one transaction; the rows deleted, per table."""
    tables = account_tables(connection)
    with transaction(connection):
        deleted = {
            table: connection.execute(
                f"DELETE FROM {_quoted(table)} WHERE account_id = ?", [account_id]
            ).fetchone()[0]
            for table in tables
        }
    return deleted


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
