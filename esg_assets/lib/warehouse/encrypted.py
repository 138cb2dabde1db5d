"""The warehouse as an encrypted DuckDB database: its key, wrapped by the service's keys, and how it opens.

DuckDB encrypts the database file, its write-ahead log and (with ``temp_file_encryption``) its spill files
with AES-256-GCM under a key given at ``ATTACH``. That key is 32 random bytes made on the warehouse's first
use, kept next to it as ``<warehouse>.key``: an AWS Encryption SDK message under the service's own keys (the
key file's primary key, or the KMS key) whose context names the warehouse, so it is held exactly like the
file keys. Writing an encrypted database needs DuckDB's ``httpfs`` extension (its crypto module), which is
loaded from the ``duckdb-ext-httpfs`` wheel; nothing is ever downloaded.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import duckdb
import duckdb_ext

from esg_assets.core.atomic_files import atomic_file
from esg_assets.core.private_files import make_private
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.crypto.messages import DecryptionError, decrypt_secret, encrypt_secret

KEY_SIZE = 32
ALIAS = "warehouse"  # the attached database's name; every connection is switched to it with USE
_PURPOSE = "warehouse-key"


class WarehouseKeyError(RuntimeError):
    """The warehouse key is missing, is not this warehouse's, or does not open it; the message says which."""


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file open for writing."""


def key_path(database: Path) -> Path:
    return Path(f"{database}.key")


def spill_directory(database: Path) -> Path:
    """Where DuckDB spills joins and sorts beyond the memory limit (encrypted files, removed when done)."""
    return Path(f"{database}.tmp")


@contextmanager
def open_encrypted(
    database: Path, keyring: Keyring, *, read_only: bool, memory_limit: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose default database is the encrypted warehouse at ``database``.

    A warehouse written before encryption (plaintext) is encrypted in place by the first writing open; a
    reading open refuses it. The spill directory is ``<warehouse>.tmp`` and its files are encrypted too.
    """
    key = _warehouse_key(database, keyring, create=not read_only)
    connection = _engine(database, memory_limit)
    try:
        try:
            _attach(connection, database, key, read_only)
        except _PlaintextWarehouse:
            if read_only:
                raise WarehouseKeyError(
                    f"the warehouse {database} is not encrypted yet: the job's next run encrypts it"
                ) from None
            connection.close()
            _encrypt_plaintext(database, key, memory_limit)
            connection = _engine(database, memory_limit)
            _attach(connection, database, key, read_only)
        yield connection
    finally:
        connection.close()


def attach_encrypted(
    connection: duckdb.DuckDBPyConnection, database: Path, keyring: Keyring, alias: str, *, read_only: bool
) -> None:
    """Attach another encrypted database (its own key, ``<database>.key``, made on a writing first use) to an
    open connection as ``alias``, e.g. a shard's store to the warehouse's connection."""
    key = _warehouse_key(database, keyring, create=not read_only)
    options = f"ENCRYPTION_KEY '{key}'" + (", READ_ONLY" if read_only else "")
    try:
        connection.execute(f"ATTACH {_quoted(database)} AS {alias} ({options})")
    except duckdb.IOException as error:
        if "encryption key" in str(error).lower():
            raise WarehouseKeyError(f"the key {key_path(database)} does not open {database}") from None
        raise _locked(database, error) from error
    if not read_only:
        for made in (database, Path(f"{database}.wal"), key_path(database)):
            make_private(made)


def remove_database(database: Path) -> None:
    """Delete a database with its write-ahead log and key (a shard's store, once folded in)."""
    for path in (database, Path(f"{database}.wal"), key_path(database)):
        path.unlink(missing_ok=True)


class _PlaintextWarehouse(Exception):
    """The warehouse file is a plaintext DuckDB database (made before the warehouse was encrypted)."""


def _encrypt_plaintext(database: Path, key: str, memory_limit: str) -> None:
    """Replace a plaintext warehouse by an encrypted copy of it (the upgrade of an existing install).

    The copy is written beside it and renamed over it, so a crash leaves the plaintext warehouse, still
    whole, for the next run to encrypt. The old file's blocks are unlinked, not overwritten: see
    docs/compliance.md.
    """
    copy = Path(f"{database}.encrypting")
    for leftover in (copy, Path(f"{copy}.wal")):
        leftover.unlink(missing_ok=True)
    connection = _engine(database, memory_limit)
    try:
        try:
            connection.execute(f"ATTACH {_quoted(database)} AS plaintext")  # read-write: holds the lock
        except duckdb.IOException as error:
            raise _locked(database, error) from error
        _attach(connection, copy, key, read_only=False)
        connection.execute(f"COPY FROM DATABASE plaintext TO {ALIAS}")
        connection.execute("USE memory")
        connection.execute(f"DETACH {ALIAS}")
        connection.execute("DETACH plaintext")
    finally:
        connection.close()
    with open(copy, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(copy, database)
    Path(f"{database}.wal").unlink(missing_ok=True)


def _is_encrypted(database: Path) -> bool:
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(f"ATTACH {_quoted(database)} AS probe (READ_ONLY)")
    except duckdb.CatalogException as error:
        if "without a key" in str(error):
            return True
        raise
    except duckdb.IOException as error:
        raise _locked(database, error) from error
    finally:
        connection.close()
    return False


def _warehouse_key(database: Path, keyring: Keyring, create: bool) -> str:
    """The warehouse key as DuckDB takes it (hex), unwrapped; made and stored first if ``create`` and new."""
    path = key_path(database)
    context = {"purpose": _PURPOSE, "warehouse": database.name}
    if not path.exists():
        if database.exists() and _is_encrypted(database):
            raise WarehouseKeyError(
                f"the warehouse {database} is encrypted but its key {path} is missing: restore the key from "
                "the backup taken with the warehouse (without it the warehouse cannot be read)"
            )
        if not create:
            raise WarehouseKeyError(
                f"the warehouse {database} is not encrypted yet: the job's next run encrypts it"
                if database.exists()
                else f"there is no warehouse at {database} yet: the job has not run here"
            )
        key = secrets.token_bytes(KEY_SIZE)
        _store_key(path, key, keyring, context)
        return key.hex()
    message = path.read_bytes()
    try:
        key = decrypt_secret(message, replace(keyring, decrypting_keys=keyring.encrypting_keys[:1]), context)
        wrapped_by_primary = True
    except DecryptionError:
        try:
            key = decrypt_secret(message, keyring, context)
        except DecryptionError as error:
            raise WarehouseKeyError(f"the warehouse key {path} cannot be used: {error}") from None
        wrapped_by_primary = False
    if len(key) != KEY_SIZE:
        raise WarehouseKeyError(f"the warehouse key {path} holds {len(key)} bytes, not {KEY_SIZE}")
    if create and not wrapped_by_primary:
        _store_key(path, key, keyring, context)  # re-wrapped under the primary key: older keys may retire
    return key.hex()


def _store_key(path: Path, key: bytes, keyring: Keyring, context: dict[str, str]) -> None:
    with atomic_file(path) as file:
        file.write(encrypt_secret(key, keyring, context))


def _engine(database: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that loads httpfs from the installed wheel only, spilling encrypted files beside
    the warehouse."""
    connection = duckdb.connect(
        ":memory:",
        config={
            "extension_directory": duckdb_ext.get_extension_dir(),
            "autoinstall_known_extensions": False,
            "temp_directory": str(spill_directory(database)),
            "memory_limit": memory_limit,
        },
    )
    try:
        connection.execute("LOAD httpfs")
        connection.execute("SET temp_file_encryption = true")
    except BaseException:
        connection.close()
        raise
    return connection


def _attach(connection: duckdb.DuckDBPyConnection, database: Path, key: str, read_only: bool) -> None:
    options = f"ENCRYPTION_KEY '{key}'" + (", READ_ONLY" if read_only else "")
    try:
        connection.execute(f"ATTACH {_quoted(database)} AS {ALIAS} ({options})")
    except duckdb.IOException as error:
        if "encryption key" in str(error).lower():
            raise WarehouseKeyError(
                f"the warehouse key {key_path(database)} does not open {database}: "
                "it is another warehouse's key"
            ) from None
        raise _locked(database, error) from error
    except duckdb.CatalogException as error:
        if "not encrypted" in str(error):
            raise _PlaintextWarehouse() from None
        raise
    connection.execute(f"USE {ALIAS}")
    if not read_only:
        for made_earlier in (database, Path(f"{database}.wal"), Path(f"{database}.tmp"), key_path(database)):
            make_private(made_earlier)  # a warehouse made before its files were private


def _locked(database: Path, error: duckdb.Error) -> WarehouseLockedError:
    return WarehouseLockedError(
        f"Cannot open the warehouse {database}: {error}. DuckDB allows one writing process at a time; "
        "wait for the running job to finish (or stop the tool holding it) and try again."
    )


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
