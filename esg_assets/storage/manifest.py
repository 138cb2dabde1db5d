"""The day's manifest: what each published file holds (rows, hashes, key), written after the files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime

MANIFEST_FORMAT = "esg-manifest"
MANIFEST_VERSION = 1
# The layout of the ratings file (columns and value formats, esg_assets/ratings/ratings_csv.py): raise it
# whenever that changes, so a reader can tell which layout a day's file has.
RATINGS_SCHEMA_VERSION = 1

RATINGS_KIND, ERRORS_KIND = "ratings", "errors"


class ManifestError(Exception):
    """A manifest that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class FileEntry:
    """One published file: its name, kind, rows, the key behind it and the SHA-256 of both of its forms."""

    name: str
    kind: str  # RATINGS_KIND or ERRORS_KIND
    rows: int
    key_id: str
    plaintext_sha256: str
    plaintext_bytes: int
    ciphertext_sha256: str
    ciphertext_bytes: int


@dataclass(frozen=True)
class Manifest:
    partition: date
    run_id: str
    schema_version: int
    rows_by_status: Mapping[str, int]  # rows of the ratings file by Processing Status
    failure_rate: float
    key_id: str
    created_at: datetime
    files: Sequence[FileEntry]

    def to_json(self) -> bytes:
        document = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "partition": self.partition.isoformat(),
            "run_id": self.run_id,
            "schema_version": self.schema_version,
            "rows_by_status": dict(self.rows_by_status),
            "failure_rate": self.failure_rate,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "files": [asdict(entry) for entry in self.files],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> "Manifest":
        try:
            document = json.loads(raw)
            if document.get("format") != MANIFEST_FORMAT or document.get("version") != MANIFEST_VERSION:
                raise ManifestError(f"not an {MANIFEST_FORMAT} version {MANIFEST_VERSION} document")
            return cls(
                partition=date.fromisoformat(document["partition"]),
                run_id=str(document["run_id"]),
                schema_version=int(document["schema_version"]),
                rows_by_status={str(k): int(v) for k, v in document["rows_by_status"].items()},
                failure_rate=float(document["failure_rate"]),
                key_id=str(document["key_id"]),
                created_at=datetime.fromisoformat(document["created_at"]),
                files=[FileEntry(**entry) for entry in document["files"]],
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ManifestError(f"malformed manifest: {type(error).__name__}: {error}") from None
