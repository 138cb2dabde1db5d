"""The DuckDB warehouse: where the day's accounts, ratings and run statistics live between steps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from esg_assets.warehouse.schema import SCHEMA


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file open for writing."""


class WarehouseResource(ConfigurableResource):
    """The DuckDB file the assets share; one short-lived connection per step."""

    path: str
    memory_limit: str = "1GB"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        database = Path(self.path)
        if not read_only:
            database.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(str(database), read_only=read_only)
        except duckdb.IOException as error:
            raise WarehouseLockedError(
                f"Cannot open the warehouse {database}: {error}. DuckDB allows one writing process at a time; "
                "wait for the running job to finish (or stop the tool holding it) and try again."
            ) from error
        try:
            # A bounded buffer keeps memory flat however many accounts there are; DuckDB spills the rest to disk.
            connection.execute(f"SET memory_limit = '{self.memory_limit}'")
            if not read_only:
                connection.execute(SCHEMA)
            yield connection
        finally:
            connection.close()
