"""Key files: the keys that encrypt the day's files, with rotation, kept in a JSON file of mode 0600."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esg_assets.core.atomic_files import atomic_file

KEY_FILE_FORMAT = "esg-keyring"
KEY_FILE_VERSION = 1
KEY_SIZE = 32  # AES-256

# Key ids are the raw AES keyring's key names in every file's header, and appear in messages: short and plain.
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed or unsafe; the message names the path and the problem."""


class UnknownKeyIdError(KeyFileError):
    """The key ring does not hold the requested key id."""

    def __init__(self, key_id: str, source: str, known_ids: tuple[str, ...]):
        super().__init__(f"unknown key id {key_id}: the key file {source} holds only {', '.join(known_ids)}")
        self.key_id = key_id


class KeyRing:
    """The keys of one key file: the primary key encrypts new files, every key decrypts the files it made.

    The key bytes never appear in ``repr`` or in any message.
    """

    def __init__(self, keys: Mapping[str, bytes], primary_id: str, source: str = "<memory>"):
        if primary_id not in keys:
            raise KeyFileError(f"key file {source}: the primary key id {primary_id} is not among its keys")
        for key_id, key in keys.items():
            _check_key_id(key_id, source)
            if len(key) != KEY_SIZE:
                raise KeyFileError(f"key file {source}: key {key_id} is {len(key)} bytes, not {KEY_SIZE}")
        self._keys = dict(keys)
        self.primary_id = primary_id
        self.source = source

    @property
    def primary_key(self) -> bytes:
        return self._keys[self.primary_id]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyIdError(key_id, self.source, self.key_ids) from None

    def __repr__(self) -> str:
        return (
            f"KeyRing(source={self.source!r}, primary_id={self.primary_id!r}, key_ids={list(self._keys)!r})"
        )


def new_key_id(now: datetime | None = None) -> str:
    """A fresh key id such as ``k-20261125-1a2b3c4d``: the creation day (UTC) and 32 random bits."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"k-{day}-{secrets.token_hex(4)}"


def generate_key_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Create a key file holding one new primary key and return its key id.

    Refuses to replace an existing file unless ``overwrite``: replacing a key file loses every key that
    older files need.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it (rotate instead)")
    key_id = new_key_id()
    entries = [_new_entry(key_id)]
    _write_key_file(path, key_id, entries, overwrite=overwrite)
    return key_id


def add_key(path: str | os.PathLike[str]) -> str:
    """Rotate: add a new key to an existing key file, make it primary, and return its id.

    The older keys stay so the files they encrypted still decrypt. Not safe against two rotations of the
    same file at the same moment (the last writer wins); rotation is a rare, manual operation.
    """
    path = Path(path)
    document = _read_document(path)
    entries = _entries(document, path)
    for entry in entries:
        _decode_key(entry, path)  # never rewrite a broken file: the problem would only move
    known = {entry["id"] for entry in entries}
    key_id = new_key_id()
    while key_id in known:  # 32 random bits: a collision on the same day is unlikely but possible
        key_id = new_key_id()
    entries.append(_new_entry(key_id))
    _write_key_file(path, key_id, entries, overwrite=True)
    return key_id


def load_key_ring(path: str | os.PathLike[str]) -> KeyRing:
    """Read and check a key file; raises ``KeyFileError`` naming the path and what is wrong."""
    path = Path(path)
    document = _read_document(path)
    keys: dict[str, bytes] = {}
    for entry in _entries(document, path):
        keys[entry["id"]] = _decode_key(entry, path)
    primary_id = document.get("primary")
    if not isinstance(primary_id, str):
        raise KeyFileError(f"key file {path}: 'primary' must be a key id string")
    return KeyRing(keys, primary_id, source=str(path))


def _read_document(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {path} does not exist (create it with: esg-report keygen --output {path})"
        ) from None
    except OSError as error:
        raise KeyFileError(f"key file {path} cannot be opened: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        # Checked on the open descriptor, so the file checked is the file read.
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"key file {path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"refusing to use it: run chmod 600 {path}"
            )
        raw = file.read()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        # Only the position: the parser's message could quote key material.
        where = (
            f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        )
        raise KeyFileError(f"key file {path} is not valid JSON{where}") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(
            f"key file {path} is not an {KEY_FILE_FORMAT} file (its 'format' is not {KEY_FILE_FORMAT!r})"
        )
    if document.get("version") != KEY_FILE_VERSION:
        raise KeyFileError(
            f"key file {path} has version {document.get('version')!r}; "
            f"this program reads version {KEY_FILE_VERSION}"
        )
    return document


def _entries(document: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"key file {path}: 'keys' must be a non-empty list")
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise KeyFileError(f"key file {path}: keys[{index}] has no string 'id'")
        key_id = entry["id"]
        _check_key_id(key_id, str(path))
        if key_id in seen:
            raise KeyFileError(f"key file {path}: key id {key_id} appears twice")
        seen.add(key_id)
        created_at = entry.get("created_at")
        try:
            datetime.fromisoformat(created_at)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise KeyFileError(f"key file {path}: key {key_id} has no ISO 'created_at' date") from None
    return entries


def _decode_key(entry: dict[str, Any], path: Path) -> bytes:
    encoded = entry.get("key")
    try:
        if not isinstance(encoded, str):
            raise ValueError
        key = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise KeyFileError(f"key file {path}: key {entry['id']} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise KeyFileError(f"key file {path}: key {entry['id']} is {len(key)} bytes, not {KEY_SIZE}")
    return key


def _check_key_id(key_id: str, source: str) -> None:
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyFileError(
            f"key file {source}: key id {key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )


def _new_entry(key_id: str) -> dict[str, str]:
    return {
        "id": key_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "key": base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii"),
    }


def _write_key_file(path: Path, primary_id: str, entries: list[dict[str, Any]], *, overwrite: bool) -> None:
    document = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "primary": primary_id,
        "keys": entries,
    }
    payload = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The file is created with mode 0600 before the key is written, so it is never readable by others,
        # not even briefly; and it is renamed into place, so a crash leaves the old file or the new one.
        with atomic_file(path, replace=overwrite) as file:
            file.write(payload)
    except FileExistsError:  # created since generate_key_file checked: still never replaced
        raise KeyFileError(
            f"key file {path} already exists; refusing to overwrite it (rotate instead)"
        ) from None
    except OSError as error:
        raise KeyFileError(f"key file {path} cannot be written: {error.strerror or error}") from None
