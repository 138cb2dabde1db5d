"""The DuckDB warehouse: where the day's accounts, ratings and run statistics live between steps."""

from __future__ import annotations

from collections.abc import Iterator
import re
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from esg_assets.access.private_files import make_private, make_process_private, private_directory
from esg_assets.warehouse.schema import SCHEMA


# A DuckDB memory size: a number and a unit (https://duckdb.org/docs/configuration/overview).
_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file open for writing."""


class WarehouseMemoryError(RuntimeError):
    """A step needed more memory than ESG_WAREHOUSE_MEMORY_LIMIT allows DuckDB."""


class WarehouseResource(ConfigurableResource):
    """The DuckDB file the assets share; one short-lived connection per step."""

    path: str
    # DuckDB's buffer pool: tables, sorts and aggregates beyond it spill to disk, so the job's memory does not
    # grow with the number of accounts (docs/performance.md measures 1,000,000 accounts at 64MB).
    memory_limit: str = "64MB"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not _MEMORY_SIZE.fullmatch(self.memory_limit.strip()):
            raise ValueError(
                f"ESG_WAREHOUSE_MEMORY_LIMIT is {self.memory_limit!r}: expected a DuckDB memory size "
                "such as 64MB or 1GB"
            )
        database = Path(self.path)
        if not read_only:
            make_process_private()  # DuckDB's database, WAL and spill files (<warehouse>.tmp/) are 0600 / 0700
            private_directory(database.parent)
        try:
            connection = duckdb.connect(str(database), read_only=read_only)
        except duckdb.IOException as error:
            raise WarehouseLockedError(
                f"Cannot open the warehouse {database}: {error}. DuckDB allows one writing process at a time; "
                "wait for the running job to finish (or stop the tool holding it) and try again."
            ) from error
        try:
            connection.execute(f"SET memory_limit = '{self.memory_limit.strip()}'")
            if not read_only:
                for made_earlier in (database, Path(f"{database}.wal"), Path(f"{database}.tmp")):
                    make_private(made_earlier)  # a warehouse made before its files were private
                connection.execute(SCHEMA)
            yield connection
        except duckdb.OutOfMemoryException as error:
            raise WarehouseMemoryError(
                f"The warehouse needed more memory than ESG_WAREHOUSE_MEMORY_LIMIT ({self.memory_limit}) allows: "
                f"{str(error).splitlines()[0]}. Raise the setting and run the day again; accounts already rated "
                "are kept."
            ) from error
        finally:
            connection.close()
