"""Write, audit, publish: a run stages the day's files as a new set, and one commit makes the whole set live.

Each run writes its files under a version folder of its own (``FirmESGRatings_YYYYMMDD.versions/<version>/``)
that no reader looks at, so the set live until then is untouched while the new one is written and checked.
The commit is one atomic replacement of the day's manifest, which names the live set and is sealed: a
reader who follows the manifest sees the previous complete set or the new complete set, never a mix. The
audit log gets an ``intent`` record of every file before the commit and a ``done`` record after it, so every
live file has a record even when the run dies in between. Sets that are not live (a replaced set, the
staging of a killed run) are removed by the next run of the day, before it stages and after it commits.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import BinaryIO

from esg_assets.core.check_report import CheckOutcome
from esg_assets.core.file_names import (
    manifest_file_name,
    versioned_name,
    versions_folder,
)
from esg_assets.core.hashing import HashingWriter
from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.audit.log import DISCARD, DONE, INTENT, PUBLISH, REPUBLISH, AuditEvent, AuditLog
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.crypto.messages import encrypting_writer
from esg_assets.lib.report_store.manifest import (
    RATINGS_SCHEMA_VERSION,
    FileEntry,
    Manifest,
    ManifestError,
    file_identity,
)
from esg_assets.lib.report_store.store import ReportStore

logger = logging.getLogger(__name__)


def new_version(run_id: str, now: datetime | None = None) -> str:
    """A set's version: staging time (UTC), run id start, random bits, e.g. 20261124T110003Z-1a2b3c4d-9f08."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{run_id[:8]}-{secrets.token_hex(2)}"


def read_manifest(store: ReportStore, day: date) -> Manifest | None:
    """The day's committed manifest as stored (its seal not yet checked); ``None`` when there is none.

    Raises ``ManifestError`` for a manifest that cannot be parsed.
    """
    try:
        with store.open(manifest_file_name(day)) as source:
            raw = source.read()
    except FileNotFoundError:
        return None
    return Manifest.from_json(raw)


class DaySet:
    """The files one run publishes for one day: staged under their own version, then committed at once."""

    def __init__(
        self,
        store: ReportStore,
        keyring: Keyring,
        audit: AuditLog,
        actor: Caller,
        day: date,
        run_id: str,
    ):
        self._store = store
        self._keyring = keyring
        self._audit = audit
        self._actor = actor
        self.day = day
        self.run_id = run_id
        self.version = new_version(run_id)
        self.files: list[FileEntry] = []

    @property
    def store(self) -> ReportStore:
        return self._store

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    @property
    def audit(self) -> AuditLog:
        return self._audit

    def stage_encrypted(self, name: str, kind: str, write_plaintext: Callable[[BinaryIO], int]) -> FileEntry:
        """Stage ``name``, whose plaintext ``write_plaintext`` writes (returning its row count), encrypted.

        The plaintext exists only in memory, one frame at a time: it is hashed on its way into the cipher and
        the ciphertext on its way into the store. The file's encryption context binds it to its name, day,
        kind, schema version and run.
        """
        path = versioned_name(self.day, self.version, name)
        identity = file_identity(name, self.day, kind, RATINGS_SCHEMA_VERSION, self.run_id)
        with self._store.publish(path) as sink:
            stored = HashingWriter(sink)
            with encrypting_writer(stored, self._keyring, identity) as encrypted:
                plaintext = HashingWriter(encrypted)
                rows = write_plaintext(plaintext)
        return self._add(name, path, kind, rows, self._keyring.primary_key_id, plaintext, stored)

    def stage_plain(self, name: str, kind: str, content: bytes) -> FileEntry:
        """Stage a file that is stored as it is (the summaries: aggregates and account ids, no names)."""
        path = versioned_name(self.day, self.version, name)
        with self._store.publish(path) as sink:
            stored = HashingWriter(sink)
            stored.write(content)
        return self._add(name, path, kind, 0, "", stored, stored)

    def _add(self, name, path, kind, rows, key_id, plaintext, stored) -> FileEntry:
        entry = FileEntry(
            name=name,
            path=path,
            kind=kind,
            rows=rows,
            key_id=key_id,
            plaintext_sha256=plaintext.digest.sha256,
            plaintext_bytes=plaintext.digest.size,
            stored_sha256=stored.digest.sha256,
            stored_bytes=stored.digest.size,
        )
        self.files.append(entry)
        return entry

    def manifest(
        self, rows_by_status: Mapping[str, int], checks: Sequence[CheckOutcome] | None = None
    ) -> Manifest:
        """The manifest of the staged set, not yet sealed: what the checks compare the staged files with.

        ``checks``: the day's check report it carries once sealed (None only in tests of older manifests).
        """
        total = sum(rows_by_status.values())
        return Manifest(
            partition=self.day,
            run_id=self.run_id,
            version=self.version,
            schema_version=RATINGS_SCHEMA_VERSION,
            rows_by_status={status.value: rows_by_status.get(status.value, 0) for status in ProcessingStatus},
            failure_rate=rows_by_status.get(ProcessingStatus.FAILED.value, 0) / total if total else 0.0,
            key_id=self._keyring.primary_key_id,
            created_at=datetime.now(UTC),
            files=list(self.files),
            checks=None if checks is None else list(checks),
        )

    def commit(self, manifest: Manifest) -> Manifest:
        """Make the staged set live: audit the intent, replace the manifest (the atomic step), audit it done.

        Then the sets of the day that are no longer live are removed.
        """
        sealed = manifest.sealed(self._keyring)
        name = manifest_file_name(self.day)
        action = REPUBLISH if self._store.exists(name) else PUBLISH
        content = sealed.to_json()
        for entry in sealed.files:
            self._record(action, INTENT, entry.path, entry.stored_sha256, f"staged in set {self.version}")
        digest = hashlib.sha256(content).hexdigest()
        self._record(
            action, INTENT, name, digest, f"commit of set {self.version} ({len(sealed.files)} files)"
        )
        with self._store.publish(name) as sink:
            sink.write(content)
        self._record(action, DONE, name, digest, f"set {self.version} is live")
        remove_other_sets(self._store, self.day, keep=self.version)
        return sealed

    def discard(self, reason: str) -> None:
        """Remove the staged set (its checks failed): the live set stays as it was."""
        for entry in self.files:
            self._store.delete(entry.path)
        self._record(DISCARD, DONE, versions_folder(self.day) + "/" + self.version, None, reason[:500])

    def _record(self, action: str, outcome: str, name: str, sha256: str | None, detail: str) -> None:
        event = AuditEvent(
            action=action,
            outcome=outcome,
            file=name,
            day=self.day,
            sha256=sha256,
            run_id=self.run_id,
            detail=detail,
        )
        self._audit.append(event, self._actor)


def remove_other_sets(store: ReportStore, day: date, keep: str | None = None) -> list[str]:
    """Remove every stored set of ``day`` but the live one (and ``keep``); return the versions removed.

    Left alone when the day's manifest cannot be read: which set is live is then unknown, and the set that
    may be live is worth more than the room the others take.
    """
    try:
        manifest = read_manifest(store, day)
    except (ManifestError, OSError) as error:
        logger.warning("not removing the old sets of %s: the manifest cannot be read (%s)", day, error)
        return []
    live = {manifest.version} if manifest is not None else set()
    folder = versions_folder(day)
    removed = [version for version in store.subfolders(folder) if version not in live and version != keep]
    for version in removed:
        store.delete_folder(f"{folder}/{version}")
    return removed
