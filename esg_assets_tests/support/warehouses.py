"""A warehouse for a test: the encrypted DuckDB file, its key wrapped by the test's key file; a snapshot."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.lib.firm_api.ams import AccountRow, AmsPage
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.account_snapshots import SnapshotWriter
from esg_assets.lib.warehouse.resource import WarehouseResource

FETCHED = datetime(2026, 11, 20, 11, 0, tzinfo=timezone.utc)


def warehouse_at(path: str | Path, memory_limit: str = "128MB") -> WarehouseResource:
    """The warehouse ``path``, with the key file ``keys/esg.key`` beside it (as ``job_environment`` uses)."""
    folder = Path(path).parent
    key_file = folder / "keys" / "esg.key"
    if not key_file.exists():
        generate_key_file(key_file)
    report_store = ReportStoreResource(output_uri=str(folder / "reports"), encryption_key_file=str(key_file))
    return WarehouseResource(path=str(path), memory_limit=memory_limit, report_store=report_store)


def snapshot(connection, day: date, ids: list[str]) -> None:
    """The day's snapshot of active accounts ``ids`` (named ``Name of <id>``), as the AMS walk writes it."""
    writer = SnapshotWriter(connection, day)
    for start in range(0, len(ids), 1_000):
        rows = [AccountRow(i, f"Name of {i}", "active", FETCHED) for i in ids[start : start + 1_000]]
        writer.stage(AmsPage(number=start // 1_000 + 1, rows=rows, rejected=[]))
    writer.replace_snapshot()
