"""The warehouse encrypted at rest: no account name in its file, its WAL or its spill files; its key held like
the file keys, refused when it is missing, swapped or another warehouse's; a plaintext warehouse upgraded."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from esg_assets.lib.crypto.keys import add_key, load_key_ring
from esg_assets.lib.warehouse.encrypted import WarehouseKeyError, key_path
from esg_assets.lib.warehouse.schema import SCHEMA
from esg_assets_tests.support.warehouses import snapshot, warehouse_at

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
ACCOUNTS = [f"ACC-{n:06d}" for n in range(3_000)]
NAME = b"Name of ACC-"  # every account's name in snapshot() starts so


def names_in(path: Path) -> int:
    return path.read_bytes().count(NAME) if path.is_file() else 0


def test_the_warehouse_file_and_its_wal_hold_no_account_name(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ACCOUNTS)
        wal = Path(f"{warehouse.path}.wal")
        assert wal.stat().st_size > 0  # the rows are in the WAL until the checkpoint at close
        assert names_in(wal) == 0
        assert connection.execute("SELECT count(*) FROM account_snapshots").fetchone() == (3_000,)
    assert names_in(Path(warehouse.path)) == 0
    with warehouse.connect(read_only=True) as connection:  # and it reads back
        assert connection.execute("SELECT min(account_name) FROM account_snapshots").fetchone() == (
            "Name of ACC-000000",
        )


def test_spill_files_hold_no_account_name(tmp_path):
    """A sort bigger than the memory limit spills to <warehouse>.tmp/: read while the query runs."""
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb", memory_limit="16MB")
    spill = Path(f"{warehouse.path}.tmp")
    seen: list[tuple[int, int]] = []
    running = True

    def watch() -> None:
        while running:
            for file in spill.glob("*"):
                try:
                    data = file.read_bytes()
                except OSError:  # removed between glob and read
                    continue
                seen.append((len(data), data.count(b"Secret Holder ")))
            time.sleep(0.02)

    with warehouse.connect() as connection:
        connection.execute(
            "CREATE TABLE names AS SELECT 'Secret Holder ' || (i * 7919 % 2000000) AS account_name "
            "FROM range(2000000) r(i)"
        )
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            connection.execute("CREATE TABLE sorted AS SELECT * FROM names ORDER BY account_name")
        finally:
            running = False
            watcher.join()
    assert any(size > 0 for size, _ in seen), "the sort did not spill: the test proves nothing"
    assert all(count == 0 for _, count in seen)


def test_without_its_key_duckdb_cannot_open_the_warehouse(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ACCOUNTS[:10])
    with pytest.raises(duckdb.CatalogException, match="encrypted database"):
        duckdb.connect(warehouse.path, read_only=True)


def test_a_missing_key_is_named_and_not_replaced(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ACCOUNTS[:10])
    key_path(Path(warehouse.path)).unlink()
    for read_only in (True, False):
        with pytest.raises(WarehouseKeyError, match=r"is encrypted but its key .*\.key is missing: restore"):
            with warehouse.connect(read_only=read_only):
                pass
    assert not key_path(Path(warehouse.path)).exists()  # no new key was made over the lost one


def test_another_warehouses_key_is_refused(tmp_path):
    ours = warehouse_at(tmp_path / "a" / "warehouse.duckdb")
    theirs = warehouse_at(tmp_path / "b" / "warehouse.duckdb")
    shutil.copy(tmp_path / "a" / "keys" / "esg.key", tmp_path / "b" / "keys" / "esg.key")  # one service key
    for warehouse in (ours, theirs):
        with warehouse.connect() as connection:
            snapshot(connection, DAY, ACCOUNTS[:10])
    # Same service key, same file name: the wrapped key opens, DuckDB refuses it.
    shutil.copy(key_path(Path(theirs.path)), key_path(Path(ours.path)))
    with pytest.raises(WarehouseKeyError, match="does not open .*another warehouse's key"):
        with ours.connect(read_only=True):
            pass
    # A key wrapped for a warehouse of another name is refused before DuckDB sees it.
    other_name = warehouse_at(tmp_path / "b" / "history.duckdb")
    with other_name.connect():
        pass
    shutil.copy(key_path(Path(other_name.path)), key_path(Path(ours.path)))
    with pytest.raises(WarehouseKeyError, match="its warehouse is 'history.duckdb', not 'warehouse.duckdb'"):
        with ours.connect(read_only=True):
            pass


def test_a_key_wrapped_by_keys_that_are_not_ours_is_refused(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect():
        pass
    (tmp_path / "keys" / "esg.key").unlink()
    warehouse_at(tmp_path / "warehouse.duckdb")  # a new service key file, which never wrapped this key
    with pytest.raises(WarehouseKeyError, match="none of the configured keys can decrypt it"):
        with warehouse.connect():
            pass


def test_a_tampered_key_is_refused(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect():
        pass
    wrapped = key_path(Path(warehouse.path))
    data = bytearray(wrapped.read_bytes())
    data[-40] ^= 1
    wrapped.write_bytes(bytes(data))
    with pytest.raises(WarehouseKeyError, match="cannot be used"):
        with warehouse.connect():
            pass


def test_rotating_the_service_key_rewraps_the_warehouse_key(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ACCOUNTS[:10])
    key_file = tmp_path / "keys" / "esg.key"
    old_id = load_key_ring(key_file).primary_id
    add_key(key_file)
    with warehouse.connect():  # a writing open re-wraps under the new primary key
        pass
    document = json.loads(key_file.read_text())
    document["keys"] = [key for key in document["keys"] if key["id"] != old_id]  # the old key retired
    key_file.write_text(json.dumps(document))
    with warehouse.connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM account_snapshots").fetchone() == (10,)


def test_a_plaintext_warehouse_is_encrypted_by_the_first_writing_open(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as plaintext:  # a warehouse made before encryption
        plaintext.execute(SCHEMA)
        plaintext.execute(
            "INSERT INTO account_snapshots SELECT DATE '2026-11-24', 'ACC-' || i, 'Name of ACC-' || i, NULL, "
            "now() FROM range(500) r(i)"
        )
    assert names_in(path) > 0
    warehouse = warehouse_at(path)
    with pytest.raises(WarehouseKeyError, match="is not encrypted yet: the job's next run encrypts it"):
        with warehouse.connect(read_only=True):
            pass
    Path(f"{path}.encrypting").write_bytes(b"a copy left by a run killed mid-upgrade")
    with warehouse.connect() as connection:
        assert connection.execute("SELECT count(*) FROM account_snapshots").fetchone() == (500,)
    assert names_in(path) == 0
    assert not Path(f"{path}.encrypting").exists()
    with pytest.raises(duckdb.CatalogException, match="encrypted database"):
        duckdb.connect(str(path), read_only=True)
