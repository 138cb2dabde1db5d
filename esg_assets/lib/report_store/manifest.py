"""The day's manifest, its commit record: which file set is live, what each holds, sealed against edits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from esg_assets.core.check_report import CheckOutcome
from esg_assets.core.file_names import manifest_file_name
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.crypto.messages import DecryptionError, FileIdentity, decrypt_bytes, encrypt_bytes

MANIFEST_FORMAT = "esg-manifest"
# Version 3 adds the day's check report ("checks"); a version 2 manifest (written before) has none and is
# still read and verified as it was sealed.
MANIFEST_VERSION = 3
_WITHOUT_CHECKS = 2
# The layout of the ratings file (columns and value formats, esg_assets/core/ratings/ratings_csv.py): raise it
# whenever that changes, so a reader can tell which layout a day's file has.
RATINGS_SCHEMA_VERSION = 1

RATINGS_KIND, ERRORS_KIND, SUMMARY_KIND, MANIFEST_KIND = "ratings", "errors", "summary", "manifest"
ENCRYPTED_SUFFIX = ".enc"
MAX_MANIFEST_BYTES = 1024 * 1024  # a manifest lists a handful of files: a few KiB


class ManifestError(Exception):
    """A manifest that cannot be read or whose seal does not hold; the message says what is wrong."""


@dataclass(frozen=True)
class FileEntry:
    """One file of the set: its name, where it is stored, its kind and rows, and the SHA-256 of both forms.

    ``key_id`` names the key that encrypted it; empty for the summary files, which are not encrypted (they
    hold aggregates and account ids, no names) and whose plaintext is what is stored.
    """

    name: str
    path: str
    kind: str
    rows: int
    key_id: str
    plaintext_sha256: str
    plaintext_bytes: int
    stored_sha256: str
    stored_bytes: int

    @property
    def encrypted(self) -> bool:
        return self.name.endswith(ENCRYPTED_SUFFIX)


def file_identity(name: str, day: date, kind: str, schema_version: int, run_id: str) -> FileIdentity:
    """The encryption context of the stored file ``name``: its plaintext name, day, kind, schema and run."""
    return FileIdentity(name.removesuffix(ENCRYPTED_SUFFIX), day, kind, schema_version, run_id)


@dataclass(frozen=True)
class Manifest:
    """The set of files live for ``partition``: published by ``run_id`` as ``version``.

    ``seal`` is an encrypted, signed message bound to this manifest's identity (its name, day, run) whose
    plaintext is the SHA-256 of the rest of the document: editing any field, or passing off another day's
    manifest, breaks it, and only a holder of a file key can make a new one.
    """

    partition: date
    run_id: str
    version: str
    schema_version: int
    rows_by_status: Mapping[str, int]  # rows of the ratings file by Processing Status
    failure_rate: float
    key_id: str
    created_at: datetime
    files: Sequence[FileEntry]
    seal: str = field(default="", repr=False)
    # The day's asset checks evaluated before the commit (all four: see day_files.py); None in a version 2
    # manifest, written before manifests carried them.
    checks: Sequence[CheckOutcome] | None = None

    def identity(self) -> FileIdentity:
        name = manifest_file_name(self.partition)
        return FileIdentity(name, self.partition, MANIFEST_KIND, self.schema_version, self.run_id)

    def entry(self, kind: str) -> FileEntry:
        for entry in self.files:
            if entry.kind == kind:
                return entry
        raise ManifestError(f"{manifest_file_name(self.partition)} lists no {kind} file")

    def file_identity(self, entry: FileEntry) -> FileIdentity:
        return file_identity(entry.name, self.partition, entry.kind, self.schema_version, self.run_id)

    def sealed(self, keyring: Keyring) -> Manifest:
        """This manifest with its seal, made with the keys new files are encrypted with."""
        seal = encrypt_bytes(_body_digest(self._body()), keyring, self.identity())
        return Manifest(**{**self.__dict__, "seal": base64.b64encode(seal).decode("ascii")})

    def check_seal(self, keyring: Keyring, day: date) -> None:
        """Raise ``ManifestError`` unless the seal holds and this is the manifest of ``day``."""
        name = manifest_file_name(day)
        if self.partition != day:
            raise ManifestError(f"{name} describes {self.partition}, not {day}")
        if not self.seal:
            raise ManifestError(f"{name} has no seal: it was not written by the job")
        try:
            seal = base64.b64decode(self.seal, validate=True)
        except (binascii.Error, ValueError):
            raise ManifestError(f"{name}: its seal is not base64") from None
        try:
            sealed_digest = decrypt_bytes(seal, keyring, self.identity())
        except DecryptionError as error:
            raise ManifestError(f"{name}: its seal does not hold: {error}") from None
        if sealed_digest != _body_digest(self._body()):
            raise ManifestError(f"{name} was edited after it was sealed: its content does not match its seal")

    def to_json(self) -> bytes:
        document = {**self._body(), "seal": self.seal}
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")

    def _body(self) -> dict[str, Any]:
        body = {
            "format": MANIFEST_FORMAT,
            "version": _WITHOUT_CHECKS if self.checks is None else MANIFEST_VERSION,
            "partition": self.partition.isoformat(),
            "run_id": self.run_id,
            "set_version": self.version,
            "schema_version": self.schema_version,
            "rows_by_status": dict(self.rows_by_status),
            "failure_rate": self.failure_rate,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "files": [asdict(entry) for entry in self.files],
        }
        if self.checks is not None:
            body["checks"] = [check.to_document() for check in self.checks]
        return body

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a manifest, refusing anything but the exact form the job writes.

        The seal covers the manifest as the job wrote it; a document that parses to the same values in another
        form (a count as a string or a float, a second "files" key, an extra field) would let a reader's
        program see what the seal does not cover, so it is refused.
        """
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"malformed manifest: {len(raw)} bytes, more than a manifest can be")
        try:
            document = json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
            if not isinstance(document, dict):
                raise ManifestError("malformed manifest: not a JSON object")
            version = document.get("version")
            if document.get("format") != MANIFEST_FORMAT or version not in (
                _WITHOUT_CHECKS,
                MANIFEST_VERSION,
            ):
                raise ManifestError(
                    f"not an {MANIFEST_FORMAT} version {_WITHOUT_CHECKS} or {MANIFEST_VERSION} document"
                )
            checks = None
            if version == MANIFEST_VERSION:
                if not isinstance(document.get("checks"), list):
                    raise ManifestError(f"malformed manifest: version {version} lists its checks")
                checks = [CheckOutcome.from_document(check) for check in document["checks"]]
            manifest = cls(
                partition=date.fromisoformat(document["partition"]),
                run_id=str(document["run_id"]),
                version=str(document["set_version"]),
                schema_version=int(document["schema_version"]),
                rows_by_status={str(k): int(v) for k, v in document["rows_by_status"].items()},
                failure_rate=float(document["failure_rate"]),
                key_id=str(document["key_id"]),
                created_at=datetime.fromisoformat(document["created_at"]),
                files=[FileEntry(**entry) for entry in document["files"]],
                seal=str(document.get("seal", "")),
                checks=checks,
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise ManifestError(f"malformed manifest: {type(error).__name__}: {error}") from None
        stored = {key: value for key, value in document.items() if key != "seal"}
        if _canonical(stored) != _canonical(manifest._body()):
            raise ManifestError(
                "malformed manifest: it is not in the form the job writes (a field added, or a value of "
                "another type or form than the job's)"
            )
        return manifest


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice: {sorted({key for key in keys if keys.count(key) > 1})}")
    return dict(pairs)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _body_digest(body: dict[str, Any]) -> bytes:
    return hashlib.sha256(_canonical(body)).hexdigest().encode("ascii")
