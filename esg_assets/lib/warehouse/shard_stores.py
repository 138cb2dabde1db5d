"""Each shard's own store for a day: its accounts to fetch and its results, folded into the warehouse after.

DuckDB allows one writing process per file, so the shards of a day, each fetching in a process of its own,
write their own encrypted DuckDB files (``shards/esg-ratings-D-shard-I-of-K.duckdb`` beside the warehouse,
each with its own key under the service's keys, like the warehouse). The warehouse's writer stages them
(``stage_shard_stores``) and folds them in (``fold_shard_store``); a store left by a run that died is folded
in by the next run of the day before it plans, so the accounts it fetched are not asked for again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from esg_assets.core.private_files import private_directory
from esg_assets.core.ratings.model import RatingResult
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.warehouse.encrypted import (
    WarehouseKeyError,
    WarehouseLockedError,
    attach_encrypted,
    open_encrypted,
    remove_database,
)
from esg_assets.lib.warehouse.ratings import (
    HELD_PROBLEMS_TABLE,
    RESULT_COLUMNS_DDL,
    TODO_TABLE,
    VALUE_COLUMNS,
    apply_results,
    staged_results,
)
from esg_assets.lib.warehouse.transactions import transaction

_ALIAS = "shard_store"
_FOLDED = "folded_results"
_STORE_NAME = re.compile(r"esg-ratings-(\d{4}-\d{2}-\d{2})-shard-\d+-of-\d+\.duckdb")
_STORE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    account_id VARCHAR NOT NULL, etag VARCHAR,
    overall DECIMAL(5, 2), environmental DECIMAL(5, 2), social DECIMAL(5, 2), governance DECIMAL(5, 2),
    primary_focus VARCHAR, primary_focus_score DECIMAL(5, 2), analysis_date DATE, problems VARCHAR
);
CREATE TABLE IF NOT EXISTS results ({RESULT_COLUMNS_DDL});
CREATE TABLE IF NOT EXISTS fetches (
    run_id VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ NOT NULL,
    fetched BIGINT NOT NULL, api_requests BIGINT NOT NULL, retries BIGINT NOT NULL, throttled BIGINT NOT NULL,
    not_modified BIGINT NOT NULL
);
"""


class UnusableShardStoreError(RuntimeError):
    """A shard store that cannot be folded in (misnamed, damaged, of another day); the message names it."""


@dataclass(frozen=True)
class ShardFetch:
    """What one fetch of a shard did (a shard re-run after a failure fetches again: a second row)."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    fetched: int
    api_requests: int
    retries: int
    throttled: int
    not_modified: int


@dataclass(frozen=True)
class FoldedShards:
    """What the stores folded into the warehouse held: their results and the fetches that made them."""

    stores: int = 0
    results: int = 0
    dropped: int = 0  # results of accounts no longer in the day's snapshot (erased since)
    api_requests: int = 0
    retries: int = 0
    throttled: int = 0
    not_modified: int = 0
    first_started_at: datetime | None = None
    last_finished_at: datetime | None = None

    def plus(self, other: FoldedShards) -> FoldedShards:
        starts = [t for t in (self.first_started_at, other.first_started_at) if t is not None]
        ends = [t for t in (self.last_finished_at, other.last_finished_at) if t is not None]
        return FoldedShards(
            stores=self.stores + other.stores,
            results=self.results + other.results,
            dropped=self.dropped + other.dropped,
            api_requests=self.api_requests + other.api_requests,
            retries=self.retries + other.retries,
            throttled=self.throttled + other.throttled,
            not_modified=self.not_modified + other.not_modified,
            first_started_at=min(starts) if starts else None,
            last_finished_at=max(ends) if ends else None,
        )


def shards_folder(warehouse: Path) -> Path:
    return warehouse.absolute().parent / "shards"


def store_path(warehouse: Path, day: date, index: int, count: int) -> Path:
    """The store of shard ``index`` (0-based) of ``count`` for ``day``."""
    return shards_folder(warehouse) / f"esg-ratings-{day.isoformat()}-shard-{index + 1}-of-{count}.duckdb"


def stores_of_day(warehouse: Path, day: date) -> list[Path]:
    """The day's stores on disk, whatever shard count made them."""
    return [path for path, of_day in _stores(warehouse) if of_day == day]


def stores_before(warehouse: Path, cutoff: date) -> list[Path]:
    """Stores of days before ``cutoff`` (a run that died and whose day was never run again left them)."""
    return [path for path, of_day in _stores(warehouse) if of_day < cutoff]


def _stores(warehouse: Path) -> list[tuple[Path, date]]:
    """Every store in the shards folder with its day, by name (``store_path``'s names only)."""
    folder = shards_folder(warehouse)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if match := _STORE_NAME.fullmatch(path.name):
            try:
                found.append((path, date.fromisoformat(match.group(1))))
            except ValueError:  # a name with no such day (2026-13-45): not a store of the job's
                continue
    return found


def stage_shard_stores(
    connection: duckdb.DuckDBPyConnection, warehouse: Path, day: date, count: int, keyring: Keyring
) -> list[int]:
    """Write each shard's accounts to fetch (planned by plan_fetch) into a new store; their sizes, in order.

    An account's shard is the MD5 of its id (UTF-8), read as a little-endian number, modulo ``count``
    (DuckDB's ``md5_number``): the same in every process, on every machine, for as long as MD5 is MD5.
    """
    private_directory(shards_folder(warehouse))
    sizes = []
    values = ", ".join(f"t.{column}" for column in VALUE_COLUMNS)
    (warehouse_alias,) = connection.execute("SELECT current_database()").fetchone()
    for index in range(count):
        path = store_path(warehouse, day, index, count)
        remove_database(path)
        attach_encrypted(connection, path, keyring, _ALIAS, read_only=False)
        try:
            connection.execute(f"USE {_ALIAS}")
            connection.execute(_STORE_SCHEMA)
            connection.execute(f"USE {warehouse_alias}")
            connection.execute(
                f"""
                INSERT INTO {_ALIAS}.tasks
                SELECT t.account_id, t.etag, {values}, p.problems
                FROM {TODO_TABLE} t LEFT JOIN {HELD_PROBLEMS_TABLE} p USING (account_id)
                WHERE md5_number(t.account_id) % {count} = {index}
                """
            )
            (size,) = connection.execute(f"SELECT count(*) FROM {_ALIAS}.tasks").fetchone()
        finally:
            connection.execute(f"DETACH {_ALIAS}")
        sizes.append(size)
    return sizes


@contextmanager
def open_shard_store(path: Path, keyring: Keyring, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection to one shard's store (its step's only database)."""
    if not path.exists():
        raise FileNotFoundError(
            f"the shard store {path} is missing: it is made when the run plans the day (plan_shards); "
            "run the day again"
        )
    with open_encrypted(path, keyring, read_only=False, memory_limit=memory_limit) as connection:
        connection.execute(_STORE_SCHEMA)
        yield connection


def stage_shard_todo(connection: duckdb.DuckDBPyConnection) -> int:
    """Stage the store's accounts without a final result (Successful or Partial) as the accounts to fetch,
    where ``iter_fetch_tasks`` reads them; how many. A shard fetched again after a failure resumes."""
    values = ", ".join(f"t.{column}" for column in VALUE_COLUMNS)
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {TODO_TABLE} AS
        SELECT t.account_id, t.etag, {values} FROM tasks t
        WHERE NOT EXISTS (
            SELECT 1 FROM results r
            WHERE r.account_id = t.account_id AND r.processing_status IN ('Successful', 'Partial'))
        """
    )
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {HELD_PROBLEMS_TABLE} AS
        SELECT t.account_id, t.problems FROM tasks t JOIN {TODO_TABLE} USING (account_id)
        WHERE t.problems IS NOT NULL
        """
    )
    (count,) = connection.execute(f"SELECT count(*) FROM {TODO_TABLE}").fetchone()
    return count


def store_tasks(connection: duckdb.DuckDBPyConnection) -> int:
    (count,) = connection.execute("SELECT count(*) FROM tasks").fetchone()
    return count


def write_shard_results(
    connection: duckdb.DuckDBPyConnection, day: date, run_id: str, results: list[RatingResult]
) -> None:
    """Replace these accounts' results in the shard's store, in one transaction."""
    if not results:
        return
    with staged_results(connection, day, run_id, results) as batch:
        with transaction(connection):
            connection.execute(f"DELETE FROM results WHERE account_id IN (SELECT account_id FROM {batch})")
            connection.execute(f"INSERT INTO results BY NAME SELECT * FROM {batch}")


def record_shard_fetch(connection: duckdb.DuckDBPyConnection, fetch: ShardFetch) -> None:
    connection.execute(
        "INSERT INTO fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            fetch.run_id,
            fetch.started_at,
            fetch.finished_at,
            fetch.fetched,
            fetch.api_requests,
            fetch.retries,
            fetch.throttled,
            fetch.not_modified,
        ],
    )


def fold_shard_store(
    connection: duckdb.DuckDBPyConnection, warehouse: Path, day: date, path: Path, keyring: Keyring
) -> FoldedShards:
    """Put a store's results into the warehouse (one transaction), then delete the store.

    Only results of accounts of the day's snapshot are folded in: those of an account erased since (its
    snapshot rows gone) are left out and counted as dropped. Folding is idempotent (each account's row is
    replaced), so a crash between the commit and the delete only folds the same results again next time. A
    store that is not what its name says (its key made for another store's name, results of another day),
    truncated or edited is refused, nothing of it folded: ``UnusableShardStoreError`` naming it.
    """
    try:
        attach_encrypted(connection, path, keyring, _ALIAS, read_only=True)
    except (WarehouseKeyError, WarehouseLockedError, duckdb.Error) as error:
        if isinstance(error, WarehouseLockedError) and _lock_conflict(error):
            raise  # a live process holds it: not damage
        raise _unusable(path, day, str(error)) from None
    try:
        try:
            results, dropped = _fold_attached(connection, path, day)
            requests, retries, throttled, not_modified, first, last = connection.execute(
                f"""
                SELECT coalesce(sum(api_requests), 0), coalesce(sum(retries), 0), coalesce(sum(throttled), 0),
                       coalesce(sum(not_modified), 0), min(started_at), max(finished_at)
                FROM {_ALIAS}.fetches
                """
            ).fetchone()
        except duckdb.Error as error:  # a truncated or edited store: its blocks do not read
            raise _unusable(path, day, str(error)) from None
    finally:
        connection.execute(f"DROP VIEW IF EXISTS {_FOLDED}")
        connection.execute(f"DETACH {_ALIAS}")
    remove_database(path)
    return FoldedShards(
        stores=1,
        results=results,
        dropped=dropped,
        api_requests=int(requests),
        retries=int(retries),
        throttled=int(throttled),
        not_modified=int(not_modified),
        first_started_at=_utc(first),
        last_finished_at=_utc(last),
    )


def fold_stores_of_day(
    connection: duckdb.DuckDBPyConnection, warehouse: Path, day: date, keyring: Keyring
) -> FoldedShards:
    """Fold every store of the day on disk into the warehouse (``fold_shard_store``), whatever made them."""
    folded = FoldedShards()
    for path in stores_of_day(warehouse, day):
        folded = folded.plus(fold_shard_store(connection, warehouse, day, path, keyring))
    return folded


def _fold_attached(connection: duckdb.DuckDBPyConnection, path: Path, day: date) -> tuple[int, int]:
    """Fold the attached store's results of accounts of the day's snapshot; (folded, dropped)."""
    (other_days,) = connection.execute(
        f"SELECT count(*) FROM {_ALIAS}.results WHERE partition_date IS DISTINCT FROM ?", [day]
    ).fetchone()
    if other_days:
        raise _unusable(path, day, f"{other_days} of its results are not of {day}")
    of_day = f"DATE '{day.isoformat()}'"  # a view takes no parameters; a date is safe to inline
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {_FOLDED} AS
        SELECT r.* FROM {_ALIAS}.results r
        WHERE r.account_id IN (SELECT s.account_id FROM account_snapshots s WHERE s.partition_date = {of_day})
        """
    )
    with transaction(connection):
        apply_results(connection, day, _FOLDED)
    folded, total = connection.execute(
        f"SELECT (SELECT count(*) FROM {_FOLDED}), (SELECT count(*) FROM {_ALIAS}.results)"
    ).fetchone()
    return folded, total - folded


def dropped_message(folded: FoldedShards, day: date) -> str:
    return (
        f"left out {folded.dropped} results of the shard stores of {day}: of accounts no longer in the day's "
        "snapshot (erased since the store was written); they are fetched again only if the AMS lists them"
    )


def _unusable(path: Path, day: date, reason: str) -> UnusableShardStoreError:
    return UnusableShardStoreError(
        f"the shard store {path} cannot be folded into {day}: {reason}. Nothing of it was folded. Delete it "
        f"with its key ({path.name}.key) and run the day again: its accounts are fetched again "
        "(docs/runbook.md, run_failure)."
    )


def _lock_conflict(error: WarehouseLockedError) -> bool:
    return "lock" in str(error.__cause__ or "").lower()


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class StoreProgress:
    """How far a shard's store got: its accounts, the results it holds, and how many of those are final."""

    path: Path
    tasks: int
    results: int
    final: int


def stores_progress(
    warehouse: Path, day: date, keyring: Keyring, memory_limit: str = "64MB"
) -> list[StoreProgress]:
    """The day's stores not yet folded into the warehouse (a run that died left them), read-only."""
    found = []
    for path in stores_of_day(warehouse, day):
        with open_encrypted(path, keyring, read_only=True, memory_limit=memory_limit) as connection:
            tasks, results, final = connection.execute(
                """
                SELECT (SELECT count(*) FROM tasks), count(*),
                       count(*) FILTER (WHERE processing_status IN ('Successful', 'Partial'))
                FROM results
                """
            ).fetchone()
        found.append(StoreProgress(path, tasks, results, final))
    return found
