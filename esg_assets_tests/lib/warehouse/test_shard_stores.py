"""Shard stores: each account in exactly one shard, fixed by its id; resume within a shard; folding in."""

import hashlib
from datetime import date
from pathlib import Path

import pytest

from esg_assets.lib.warehouse.ratings import iter_fetch_tasks, plan_fetch, write_results
from esg_assets.lib.warehouse.shard_stores import (
    fold_shard_store,
    stage_shard_stores,
    stage_shard_todo,
    store_path,
    stores_of_day,
    stores_progress,
    write_shard_results,
)
from esg_assets_tests.lib.warehouse.test_warehouse import failure, success
from esg_assets_tests.support.warehouses import snapshot, warehouse_at

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
IDS = [f"ACC-{n:07d}" for n in range(1, 1001)]


def store_ids(warehouse, path: Path) -> set[str]:
    with warehouse.connect_shard_store(path) as store:
        return {account_id for (account_id,) in store.execute("SELECT account_id FROM tasks").fetchall()}


def staged(warehouse, count: int) -> list[int]:
    with warehouse.connect() as connection:
        plan_fetch(connection, DAY)
        return stage_shard_stores(connection, Path(warehouse.path), DAY, count, warehouse.keyring())


def test_each_account_is_in_the_one_shard_its_ids_md5_names(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS)
    sizes = staged(warehouse, 3)
    assert sum(sizes) == 1000 and min(sizes) > 250  # every account once, spread evenly
    for index in range(3):
        path = store_path(Path(warehouse.path), DAY, index, 3)
        expected = {i for i in IDS if int.from_bytes(hashlib.md5(i.encode()).digest(), "little") % 3 == index}
        assert store_ids(warehouse, path) == expected
    assert staged(warehouse, 3) == sizes  # planned again: the same shards
    # The stores are encrypted like the warehouse: no account id in their bytes.
    for path in stores_of_day(Path(warehouse.path), DAY):
        assert b"ACC-0000" not in path.read_bytes()
        for made in (path, Path(f"{path}.key")):
            assert oct(made.stat().st_mode & 0o777) == "0o600", made
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_shard_fetched_again_skips_its_final_results_and_folding_in_is_idempotent(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS[:10])
        write_results(connection, DAY, "run-0", [success(IDS[9], "10.00", '"old"')])  # a final result
    assert sum(staged(warehouse, 1)) == 9  # IDS[9] is already final: not staged
    path = store_path(Path(warehouse.path), DAY, 0, 1)
    with warehouse.connect_shard_store(path) as store:
        write_shard_results(store, DAY, "run-1", [success(IDS[0], "20.00", '"e0"'), failure(IDS[1])])
        # The shard's step fails and runs again: the Successful result is kept, the Failed one asked again.
        assert stage_shard_todo(store) == 8
        tasks = [task.account_id for batch in iter_fetch_tasks(store, 100) for task in batch]
        assert IDS[0] not in tasks and IDS[1] in tasks
    [progress] = stores_progress(Path(warehouse.path), DAY, warehouse.keyring())
    assert (progress.tasks, progress.results, progress.final) == (9, 2, 1)

    # A crash between the fold's commit and the store's removal leaves the store: the next run folds it again.
    kept = {copy: copy.read_bytes() for copy in (path, Path(f"{path}.key"))}
    with warehouse.connect() as connection:
        fold_shard_store(connection, Path(warehouse.path), DAY, path, warehouse.keyring())
        for copy, content in kept.items():
            copy.write_bytes(content)
        fold_shard_store(connection, Path(warehouse.path), DAY, path, warehouse.keyring())
        rows = connection.execute(
            "SELECT account_id, processing_status, overall FROM esg_ratings ORDER BY account_id"
        ).fetchall()
        held = connection.execute("SELECT account_id, etag FROM held_ratings ORDER BY account_id").fetchall()
    statuses = [(account_id, status) for account_id, status, _ in rows]
    assert statuses == [(IDS[0], "Successful"), (IDS[1], "Failed"), (IDS[9], "Successful")]
    assert held == [(IDS[0], '"e0"'), (IDS[9], '"old"')]
    assert stores_of_day(Path(warehouse.path), DAY) == []  # removed once folded, with its key


def test_a_store_missing_its_key_is_refused_naming_the_key(tmp_path):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS[:10])
    staged(warehouse, 2)
    path = store_path(Path(warehouse.path), DAY, 0, 2)
    Path(f"{path}.key").unlink()
    with pytest.raises(Exception, match=r"key .*shard-1-of-2\.duckdb\.key is missing"):
        with warehouse.connect_shard_store(path):
            pass


def test_only_results_of_the_day_for_accounts_of_its_snapshot_are_folded_in(tmp_path):
    """A store renamed (with its key) from another day, and an account erased since its store was written:
    neither reaches the warehouse; both are counted as dropped."""
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    other_day = date(2026, 11, 21)
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS[:3])
        snapshot(connection, other_day, IDS[:3])
    staged(warehouse, 1)
    path = store_path(Path(warehouse.path), DAY, 0, 1)
    with warehouse.connect_shard_store(path) as store:
        write_shard_results(store, DAY, "run-1", [success(account_id) for account_id in IDS[:3]])
    with warehouse.connect() as connection:  # the account is erased meanwhile: its snapshot rows go
        connection.execute("DELETE FROM account_snapshots WHERE account_id = ?", [IDS[2]])
    # Renamed as the other day's store: its key's context names the old file, so it does not open at all.
    renamed = store_path(Path(warehouse.path), other_day, 0, 1)
    for suffix in ("", ".key"):
        Path(f"{path}{suffix}").rename(f"{renamed}{suffix}")
    with warehouse.connect() as connection, pytest.raises(Exception, match=r"cannot be used"):
        fold_shard_store(connection, Path(warehouse.path), other_day, renamed, warehouse.keyring())
    for suffix in ("", ".key"):
        Path(f"{renamed}{suffix}").rename(f"{path}{suffix}")

    with warehouse.connect() as connection:
        folded = fold_shard_store(connection, Path(warehouse.path), DAY, path, warehouse.keyring())
        rows = connection.execute("SELECT account_id FROM esg_ratings ORDER BY 1").fetchall()
        held = connection.execute("SELECT account_id FROM held_ratings ORDER BY 1").fetchall()
    assert (folded.results, folded.dropped) == (2, 1)
    assert rows == held == [(IDS[0],), (IDS[1],)]
