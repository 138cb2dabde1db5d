"""The DuckDB warehouse: where the day's accounts, ratings and run statistics live between steps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.private_files import make_process_private, private_directory
from esg_assets.core.setting_values import memory_size, setting_check
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.encrypted import open_encrypted, spill_directory
from esg_assets.lib.warehouse.schema import SCHEMA
from esg_assets.lib.warehouse.shard_stores import open_shard_store
from esg_assets.lib.warehouse.spill import spill_peak_bytes, watching_spill


class WarehouseMemoryError(RuntimeError):
    """A step needed more memory than ESG_WAREHOUSE_MEMORY_LIMIT allows DuckDB."""


class WarehouseResource(ConfigurableResource):
    """The encrypted DuckDB file the assets share; one short-lived connection per step.

    Its key is wrapped by the service's own keys, those of ``report_store`` (see warehouse/encrypted.py).
    """

    path: str
    report_store: ReportStoreResource
    # DuckDB's buffer pool: tables, joins and sorts beyond it spill to disk; DuckDB 1.4's grouped aggregates
    # do not, about 100 bytes an account (docs/performance.md measures 1,000,000 accounts at 128MB).
    memory_limit: str = settings.WAREHOUSE_MEMORY_LIMIT.default  # type: ignore[assignment]

    _memory_limit = setting_check("memory_limit", settings.WAREHOUSE_MEMORY_LIMIT, memory_size)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        database = Path(self.path)
        if not read_only:
            make_process_private()  # DuckDB's database, WAL and spill files (<warehouse>.tmp/): 0600 / 0700
            private_directory(database.parent)
        keyring = self.report_store.service_keyring()
        try:
            opened = open_encrypted(database, keyring, read_only=read_only, memory_limit=self.memory_limit)
            with watching_spill(spill_directory(database)), opened as connection:
                if not read_only:
                    connection.execute(SCHEMA)
                yield connection
        except duckdb.OutOfMemoryException as error:
            raise WarehouseMemoryError(
                "The warehouse needed more memory than ESG_WAREHOUSE_MEMORY_LIMIT "
                f"({self.memory_limit}) allows: {str(error).splitlines()[0]}. Raise the setting and run the "
                "day again; accounts already rated are kept."
            ) from error

    @contextmanager
    def connect_shard_store(self, store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection to a shard's store (shard_stores.py), under the warehouse's memory limit."""
        make_process_private()
        try:
            with open_shard_store(
                store, self.report_store.service_keyring(), self.memory_limit
            ) as connection:
                yield connection
        except duckdb.OutOfMemoryException as error:
            raise WarehouseMemoryError(
                "The shard's store needed more memory than ESG_WAREHOUSE_MEMORY_LIMIT "
                f"({self.memory_limit}) allows: {str(error).splitlines()[0]}. Raise the setting and run the "
                "day again; accounts already rated are kept."
            ) from error

    def keyring(self) -> Keyring:
        """The service's keys, which wrap the warehouse's key and each shard store's."""
        return self.report_store.service_keyring()

    def size_bytes(self) -> int:
        """The DuckDB file's size now (its WAL is folded in when the last connection closes); 0 if none."""
        try:
            return Path(self.path).stat().st_size
        except FileNotFoundError:
            return 0

    def spill_peak_bytes(self) -> int:
        """The largest DuckDB spill (temp directory) of this warehouse this process has seen; see spill.py."""
        return spill_peak_bytes(spill_directory(Path(self.path)))
