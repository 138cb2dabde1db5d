"""A warehouse for a test: the encrypted DuckDB file, its key wrapped by the test's key file."""

from __future__ import annotations

from pathlib import Path

from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.resource import WarehouseResource


def warehouse_at(path: str | Path, memory_limit: str = "128MB") -> WarehouseResource:
    """The warehouse ``path``, with the key file ``keys/esg.key`` beside it (the one ``job_environment`` uses)."""
    folder = Path(path).parent
    key_file = folder / "keys" / "esg.key"
    if not key_file.exists():
        generate_key_file(key_file)
    report_store = ReportStoreResource(output_uri=str(folder / "reports"), encryption_key_file=str(key_file))
    return WarehouseResource(path=str(path), memory_limit=memory_limit, report_store=report_store)
