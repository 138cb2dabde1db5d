"""Publishing a day's files: encrypted as they stream, hashed on both sides of the cipher, audited, and the
manifest last."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import BinaryIO

from esg_assets.access.caller import Caller
from esg_assets.audit.log import DONE, PUBLISH, REPUBLISH, AuditEvent, AuditLog
from esg_assets.crypto.data_keys import KeySource
from esg_assets.crypto.stream_cipher import encrypting_writer
from esg_assets.ratings.model import ProcessingStatus
from esg_assets.storage.file_names import manifest_file_name
from esg_assets.storage.hashing import HashingWriter
from esg_assets.storage.manifest import RATINGS_SCHEMA_VERSION, FileEntry, Manifest
from esg_assets.storage.report_store import ReportStore


class DayPublisher:
    """Publishes the files of one day for one run into ``store`` and records each publication in ``audit``."""

    def __init__(
        self, store: ReportStore, keys: KeySource, audit: AuditLog, actor: Caller, day: date, run_id: str
    ):
        self._store = store
        self._keys = keys
        self._audit = audit
        self._actor = actor
        self.day = day
        self.run_id = run_id

    def publish_encrypted(
        self, name: str, kind: str, write_plaintext: Callable[[BinaryIO], int]
    ) -> FileEntry:
        """Publish ``name``, whose plaintext ``write_plaintext`` writes (returning its row count), encrypted.

        The plaintext exists only in memory, one segment at a time: it is hashed on its way into the cipher
        and the ciphertext on its way into the store.
        """
        replacing = self._store.exists(name)
        with self._store.publish(name) as sink:
            ciphertext = HashingWriter(sink)
            with encrypting_writer(ciphertext, self._keys) as encrypted:
                plaintext = HashingWriter(encrypted)
                rows = write_plaintext(plaintext)
        entry = FileEntry(
            name=name,
            kind=kind,
            rows=rows,
            key_id=encrypted.key_id,
            plaintext_sha256=plaintext.digest.sha256,
            plaintext_bytes=plaintext.digest.size,
            ciphertext_sha256=ciphertext.digest.sha256,
            ciphertext_bytes=ciphertext.digest.size,
        )
        self._record(name, REPUBLISH if replacing else PUBLISH, entry.ciphertext_sha256)
        return entry

    def publish_manifest(self, rows_by_status: Mapping[str, int], files: Sequence[FileEntry]) -> Manifest:
        """Publish the day's manifest: last, so that it only ever describes files already in place."""
        total = sum(rows_by_status.values())
        manifest = Manifest(
            partition=self.day,
            run_id=self.run_id,
            schema_version=RATINGS_SCHEMA_VERSION,
            rows_by_status={status.value: rows_by_status.get(status.value, 0) for status in ProcessingStatus},
            failure_rate=rows_by_status.get(ProcessingStatus.FAILED.value, 0) / total if total else 0.0,
            key_id=files[0].key_id,
            created_at=datetime.now(UTC),
            files=list(files),
        )
        name = manifest_file_name(self.day)
        replacing = self._store.exists(name)
        content = manifest.to_json()
        with self._store.publish(name) as sink:
            digest = HashingWriter(sink)
            digest.write(content)
        self._record(name, REPUBLISH if replacing else PUBLISH, digest.digest.sha256)
        return manifest

    def _record(self, name: str, action: str, sha256: str) -> None:
        self._audit.append(
            AuditEvent(
                action=action, outcome=DONE, file=name, day=self.day, sha256=sha256, run_id=self.run_id
            ),
            self._actor,
        )
