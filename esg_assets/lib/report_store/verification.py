"""Checks a day's file set against its manifest as a reader would, naming every difference, file by file."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from esg_assets.core.file_names import (
    day_of_file_name,
    manifest_file_name,
    version_of_stored_name,
    versioned_name,
)
from esg_assets.core.hashing import HashingReader
from esg_assets.core.ratings.ratings_csv import RatingsCsvError, parse_ratings_csv
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.crypto.messages import DecryptionError, decrypting_reader
from esg_assets.lib.report_store.manifest import RATINGS_KIND, FileEntry, Manifest, ManifestError
from esg_assets.lib.report_store.publishing import read_manifest
from esg_assets.lib.report_store.store import ReportStore

_CHUNK = 1024 * 1024


@dataclass
class DayVerification:
    """What ``verify_day`` found: the files it checked and one line per problem (none: all is well)."""

    day: date
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def committed_manifest(store: ReportStore, keyring: Keyring, day: date) -> Manifest:
    """The day's manifest, its seal checked; ``ManifestError`` saying why, ``FileNotFoundError`` if none."""
    manifest = read_manifest(store, day)
    if manifest is None:
        raise FileNotFoundError(
            f"{store.uri(manifest_file_name(day))} does not exist: no set of {day} is published"
        )
    manifest.check_seal(keyring, day)
    return manifest


def verify_day(store: ReportStore, keyring: Keyring, day: date) -> DayVerification:
    """The live set of ``day``: its manifest's seal, then each file it lists, then stray files of the day."""
    result = DayVerification(day)
    manifest_name = manifest_file_name(day)
    try:
        manifest = committed_manifest(store, keyring, day)
    except FileNotFoundError as error:
        result.problems.append(f"{manifest_name}: missing ({error})")
        return result
    except ManifestError as error:
        result.problems.append(str(error))
        return result
    except OSError as error:
        result.problems.append(f"{manifest_name}: cannot be read: {error.strerror or error}")
        return result
    result.checked.append(manifest_name)
    result.problems += verify_files(store, keyring, manifest)
    result.checked += [entry.name for entry in manifest.files]
    listed = {entry.path for entry in manifest.files} | {manifest_name}
    for name in store.list("FirmESG"):
        version = version_of_stored_name(day, name)
        # Other versions are sets no reader follows (one replaced, or staged by a run still going or killed).
        stray = version == manifest.version if version is not None else day_of_file_name(name) == day
        if stray and name not in listed:
            result.problems.append(f"{name}: in the store but not in the manifest")
    return result


def verify_files(store: ReportStore, keyring: Keyring, manifest: Manifest) -> list[str]:
    """Every problem of the files ``manifest`` lists: hashes, identity, decryption, format and row counts."""
    problems = []
    for entry in manifest.files:
        problems += _check_file(store, keyring, entry, manifest)
    return problems


def _check_file(store: ReportStore, keyring: Keyring, entry: FileEntry, manifest: Manifest) -> list[str]:
    unexpected = unexpected_path(entry, manifest)
    if unexpected:
        return [unexpected]
    try:
        source = store.open(entry.path)
    except FileNotFoundError:
        return [f"{entry.name}: missing ({store.uri(entry.path)} does not exist)"]
    except OSError as error:
        return [f"{entry.name}: cannot be read: {error}"]
    problems = []
    with source:
        stored = HashingReader(source)
        if not entry.encrypted:
            while stored.read(_CHUNK):
                pass
            return _compare("stored", entry.name, entry.stored_sha256, entry.stored_bytes, stored)
        plaintext = HashingReader(decrypting_reader(stored, keyring, manifest.file_identity(entry)))
        try:
            rows_by_status = _read_rows(plaintext, entry.kind)
            while plaintext.read(_CHUNK):
                pass
        except DecryptionError as error:
            problems.append(f"{entry.name}: undecryptable: {error}")
            rows_by_status = None
        except (RatingsCsvError, csv.Error, UnicodeDecodeError) as error:
            problems.append(f"{entry.name}: decrypts, but is not a valid {entry.kind} file: {error}")
            rows_by_status = None
        while stored.read(_CHUNK):  # the rest, when decryption stopped early: the hash covers it all
            pass
    problems += _compare("stored", entry.name, entry.stored_sha256, entry.stored_bytes, stored)
    if rows_by_status is not None:
        problems += _compare(
            "plaintext", entry.name, entry.plaintext_sha256, entry.plaintext_bytes, plaintext
        )
        rows = sum(rows_by_status.values())
        if rows != entry.rows:
            problems.append(f"{entry.name}: row count mismatch: manifest says {entry.rows}, file has {rows}")
        if entry.kind == RATINGS_KIND:
            for status, expected in manifest.rows_by_status.items():
                if rows_by_status.get(status, 0) != expected:
                    problems.append(
                        f"{entry.name}: {status} rows mismatch: manifest says {expected}, "
                        f"file has {rows_by_status.get(status, 0)}"
                    )
    return problems


def unexpected_path(entry: FileEntry, manifest: Manifest) -> str | None:
    """A problem if ``entry`` is not where its set keeps it (``<versions folder>/<version>/<name>``)."""
    try:
        expected = versioned_name(manifest.partition, manifest.version, entry.name)
    except ValueError as error:
        return f"{entry.name}: not a file name the job writes ({error})"
    if entry.path != expected:
        return f"{entry.name}: the manifest lists it at {entry.path!r}, not in its set at {expected!r}"
    return None


def _read_rows(plaintext: HashingReader, kind: str) -> Counter:
    """Rows by Processing Status (the last column of the ratings file, the second of the error log)."""
    buffered = io.BufferedReader(plaintext)
    try:
        if kind == RATINGS_KIND:
            return Counter(row["Processing Status"] for row in parse_ratings_csv(buffered))
        text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        try:
            records = csv.reader(text)
            next(records, None)  # the header
            return Counter(row[1] if len(row) > 1 else "" for row in records)
        finally:
            text.detach()
    finally:
        buffered.detach()  # a wrapper closed (or collected) would close the stream the caller still drains


def _compare(
    form: str, name: str, expected_sha256: str, expected_size: int, actual: HashingReader
) -> list[str]:
    digest = actual.digest
    if digest.sha256 == expected_sha256:
        return []
    return [
        f"{name}: {form} SHA-256 mismatch: manifest says {expected_sha256} ({expected_size} bytes), "
        f"file has {digest.sha256} ({digest.size} bytes)"
    ]
