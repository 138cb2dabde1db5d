"""Shard stores: each account in exactly one shard, fixed by its id; resume within a shard; folding in."""

import hashlib
from datetime import date
from pathlib import Path

import pytest

from esg_assets.lib.warehouse.ratings import iter_fetch_tasks, plan_fetch, write_results
from esg_assets.lib.warehouse.shard_stores import (
    UnusableShardStoreError,
    fold_shard_store,
    shards_folder,
    stage_shard_stores,
    stage_shard_todo,
    store_path,
    stores_before,
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


def test_only_results_of_accounts_of_the_days_snapshot_are_folded_in(tmp_path):
    """A store renamed (with its key) from another day does not open; the result of an account erased since
    its store was written does not reach the warehouse (nor its held rating) and is counted as dropped."""
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


OTHER_DAY = date(2026, 11, 21)


def _swap_to_another_day(path: Path, warehouse) -> Path:
    target = store_path(Path(warehouse.path), OTHER_DAY, 0, 2)
    target.write_bytes(path.read_bytes())
    Path(f"{target}.key").write_bytes(Path(f"{path}.key").read_bytes())
    return target


def _swap_to_another_shard(path: Path, warehouse) -> Path:
    target = store_path(Path(warehouse.path), DAY, 1, 2)
    target.write_bytes(path.read_bytes())
    Path(f"{target}.key").write_bytes(Path(f"{path}.key").read_bytes())
    return target


def _truncated(path: Path, warehouse) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _edited(path: Path, warehouse) -> Path:
    data = bytearray(path.read_bytes())
    for offset in range(12_288 + 100, len(data), 4_096):  # a byte of every block after the headers
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _emptied(path: Path, warehouse) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (_swap_to_another_day, "its warehouse is 'esg-ratings-2026-11-20-shard-1-of-2.duckdb'"),
        (_swap_to_another_shard, "its warehouse is 'esg-ratings-2026-11-20-shard-1-of-2.duckdb'"),
        (_truncated, "Could not read enough bytes"),
        (_edited, "AES tag differs"),
        (_emptied, "not a valid DuckDB database file"),
    ],
)
def test_a_store_renamed_truncated_or_edited_is_refused_naming_it_and_nothing_is_folded(
    tmp_path, attack, reason
):
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS[:200])
        snapshot(connection, OTHER_DAY, IDS[:200])
    staged(warehouse, 2)
    path = store_path(Path(warehouse.path), DAY, 0, 2)
    with warehouse.connect_shard_store(path) as store:
        write_shard_results(store, DAY, "run-1", [success(i, "20.00", '"e"') for i in IDS[:200]])
    attacked = attack(path, warehouse)
    day = date.fromisoformat(attacked.name[len("esg-ratings-") :][:10])
    with warehouse.connect() as connection:
        with pytest.raises(UnusableShardStoreError) as refused:
            fold_shard_store(connection, Path(warehouse.path), day, attacked, warehouse.keyring())
        (rows,) = connection.execute("SELECT count(*) FROM esg_ratings").fetchone()
    message = str(refused.value)
    assert f"the shard store {attacked} cannot be folded into {day}" in message and reason in message
    assert "Nothing of it was folded" in message and "Delete it with its key" in message
    assert rows == 0
    assert attacked.exists()  # left for the operator to look at and delete


def test_a_store_holding_another_days_results_is_refused(tmp_path):
    # Its name and key are right: what went into it is not (an insider with the service's keys, a bug).
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS[:10])
    staged(warehouse, 1)
    path = store_path(Path(warehouse.path), DAY, 0, 1)
    with warehouse.connect_shard_store(path) as store:
        write_shard_results(store, OTHER_DAY, "run-1", [success(IDS[0], "20.00", '"e0"')])
    with warehouse.connect() as connection:
        with pytest.raises(UnusableShardStoreError, match=r"1 of its results are not of 2026-11-20"):
            fold_shard_store(connection, Path(warehouse.path), DAY, path, warehouse.keyring())
        assert connection.execute("SELECT count(*) FROM esg_ratings").fetchone() == (0,)


def test_stores_left_with_another_shard_count_are_folded_and_nothing_is_fetched_twice(tmp_path):
    # A run with ESG_SHARDS=3 died mid-fetch; the next run of the day has ESG_SHARDS=2. plan_shards folds
    # every store of the day first (whatever count made it), then plans and stages two shards.
    warehouse = warehouse_at(tmp_path / "warehouse.duckdb")
    database = Path(warehouse.path)
    with warehouse.connect() as connection:
        snapshot(connection, DAY, IDS)
    assert sum(staged(warehouse, 3)) == 1000
    fetched_before: set[str] = set()
    for index in range(3):
        with warehouse.connect_shard_store(store_path(database, DAY, index, 3)) as store:
            ids = sorted(store_ids_of(store))[: 100 * (index + 1)]  # each shard got part-way
            write_shard_results(store, DAY, "run-dead", [success(i, "20.00", '"e"') for i in ids[:-5]])
            write_shard_results(store, DAY, "run-dead", [failure(i) for i in ids[-5:]])
            fetched_before |= set(ids[:-5])
    with warehouse.connect() as connection:
        for store in stores_of_day(database, DAY):
            fold_shard_store(connection, database, DAY, store, warehouse.keyring())
        plan_fetch(connection, DAY)
        sizes = stage_shard_stores(connection, database, DAY, 2, warehouse.keyring())
    assert stores_of_day(database, DAY) == [store_path(database, DAY, i, 2) for i in range(2)]
    assert sum(sizes) == 1000 - len(fetched_before)  # the Failed ones are asked again, the final ones not
    to_fetch: list[set[str]] = []
    for index in range(2):
        with warehouse.connect_shard_store(store_path(database, DAY, index, 2)) as store:
            to_fetch.append(store_ids_of(store))
            write_shard_results(store, DAY, "run-2", [success(i, "30.00", '"f"') for i in to_fetch[-1]])
    assert not to_fetch[0] & to_fetch[1] and not (to_fetch[0] | to_fetch[1]) & fetched_before
    with warehouse.connect() as connection:
        for store in stores_of_day(database, DAY):
            fold_shard_store(connection, database, DAY, store, warehouse.keyring())
        rows = connection.execute(
            "SELECT account_id, processing_status, overall FROM esg_ratings WHERE partition_date = ?", [DAY]
        ).fetchall()
    assert sorted(account_id for account_id, _, _ in rows) == IDS  # the day complete, each account once
    assert {status for _, status, _ in rows} == {"Successful"}
    assert {str(overall) for a, _, overall in rows if a in fetched_before} == {"20.00"}


def store_ids_of(store) -> set[str]:
    return {account_id for (account_id,) in store.execute("SELECT account_id FROM tasks").fetchall()}


def test_files_in_the_shards_folder_not_named_like_a_store_are_left_alone(tmp_path):
    # A name with no such day once made retention's stores_before raise ValueError (its whole run failed).
    database = tmp_path / "warehouse.duckdb"
    folder = shards_folder(database)
    folder.mkdir()
    for name in ("esg-ratings-2026-13-45-shard-1-of-2.duckdb", "notes.txt", "esg-ratings-2026-11-20.duckdb"):
        (folder / name).write_bytes(b"x")
    store = store_path(database, DAY, 0, 2)
    store.write_bytes(b"x")
    assert stores_of_day(database, DAY) == [store]
    assert stores_before(database, date(2027, 1, 1)) == [store]
    assert stores_before(database, DAY) == []
