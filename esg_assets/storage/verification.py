"""Checks a day's published files against their manifest and names every difference, file by file."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from esg_assets.crypto.data_keys import KeySource
from esg_assets.crypto.stream_cipher import DecryptionError, decrypting_reader
from esg_assets.ratings.ratings_csv import RatingsCsvError, parse_ratings_csv
from esg_assets.storage.file_names import manifest_file_name, ratings_file_name
from esg_assets.storage.hashing import HashingReader
from esg_assets.storage.manifest import RATINGS_KIND, FileEntry, Manifest, ManifestError
from esg_assets.storage.report_store import ReportStore

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


def verify_day(store: ReportStore, keys: KeySource, day: date) -> DayVerification:
    result = DayVerification(day)
    manifest_name = manifest_file_name(day)
    try:
        with store.open(manifest_name) as source:
            manifest = Manifest.from_json(source.read())
    except FileNotFoundError:
        result.problems.append(f"{manifest_name}: missing ({store.uri(manifest_name)} does not exist)")
        return result
    except ManifestError as error:
        result.problems.append(f"{manifest_name}: {error}")
        return result
    if manifest.partition != day:
        result.problems.append(f"{manifest_name}: describes {manifest.partition}, not {day}")
    for entry in manifest.files:
        result.checked.append(entry.name)
        result.problems.extend(_check_file(store, keys, entry, manifest))
    day_prefix = ratings_file_name(day).split(".", 1)[0]
    listed = {entry.name for entry in manifest.files} | {manifest_name}
    for name in store.list(day_prefix):
        if name not in listed:
            result.problems.append(f"{name}: in the store but not in the manifest")
    return result


def _check_file(store: ReportStore, keys: KeySource, entry: FileEntry, manifest: Manifest) -> list[str]:
    try:
        source = store.open(entry.name)
    except FileNotFoundError:
        return [f"{entry.name}: missing ({store.uri(entry.name)} does not exist)"]
    except OSError as error:
        return [f"{entry.name}: cannot be read: {error}"]
    problems = []
    with source:
        ciphertext = HashingReader(source)
        plaintext = HashingReader(decrypting_reader(ciphertext, keys))
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
        while ciphertext.read(_CHUNK):  # the rest, when decryption stopped early: the hash covers it all
            pass
    problems += _compare(
        "ciphertext", entry.name, entry.ciphertext_sha256, entry.ciphertext_bytes, ciphertext
    )
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
