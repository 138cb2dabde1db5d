"""The audit log: append-only JSON lines, each record chained to the one before by SHA-256.

Why its own files and not the warehouse: a run holds the DuckDB file locked for hours, and people read
yesterday's file exactly then. Each record holds the hash of the record before it and its own hash, so an
edited record breaks its own hash, and a deleted or re-ordered one breaks the sequence and the chain. The
chain alone cannot show records cut from the end, so a checkpoint file names the last record's number and
hash; both are updated under one lock. Someone able to rewrite the whole directory could rebuild a
consistent chain: ``ratings_file`` also records the checkpoint in the run's metadata, which lives elsewhere,
and each record is also given to the configured witnesses (``witness.py``: syslog, S3 Object Lock), which the
service account can add to but not change; ``esg-report audit verify`` compares the log with them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from esg_assets.core.atomic_files import atomic_file
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.audit.records import record_hash, record_line
from esg_assets.lib.audit.witness import AuditWitness, WitnessError

LOG_NAME = "audit.jsonl"
CHECKPOINT_NAME = "audit.checkpoint.json"
OWED_NAME = "audit.owed.json"  # per kind of witness, the records it did not take: given with the next one
GENESIS = "0" * 64  # the "previous hash" of the first record
_TAIL_BYTES = 64 * 1024  # records are a few hundred bytes: the last one is within this much of the end

# What happened, and how it ended.
PUBLISH, REPUBLISH, DISCARD, DECRYPT, VERIFY, RETENTION_DELETE = (
    "publish",
    "republish",
    "discard",
    "decrypt",
    "verify",
    "retention_delete",
)
# Privacy requests (esg-report subject): the record holds the SHA-256 of the account id, not the id.
SUBJECT_EXPORT, SUBJECT_ERASE = "subject_export", "subject_erase"
# Changes to the readers whose own keys new files are encrypted to (esg-report readers).
READERS_ADD, READERS_REMOVE = "readers_add", "readers_remove"
# INTENT: about to happen (a publication is recorded before its commit, and done after it).
ALLOWED, DENIED, INTENT, DONE, FAILED = "allowed", "denied", "intent", "done", "failed"


class AuditLogError(Exception):
    """The audit log cannot be written, or is not in a state that can be appended to."""


@dataclass(frozen=True)
class AuditEvent:
    """What to record; ``AuditLog.append`` adds who, where, when and the chain."""

    action: str
    outcome: str
    file: str | None = None
    day: date | None = None
    sha256: str | None = None  # of the file as stored (its ciphertext)
    detail: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str


class AuditLog:
    """The log in ``directory`` (created with mode 0700; the log and its checkpoint are 0600).

    ``witnesses``: where each record also goes (``AuditTrailResource`` gives a deployment's), or a function
    that makes them, called at the first append; ``()``, the default, for none.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        witnesses: Sequence[AuditWitness] | Callable[[], Sequence[AuditWitness]] = (),
    ):
        self.directory = Path(directory).absolute()
        self.path = self.directory / LOG_NAME
        self.checkpoint_path = self.directory / CHECKPOINT_NAME
        self.owed_path = self.directory / OWED_NAME
        self._make_witnesses = witnesses if callable(witnesses) else None
        self._witnesses = None if callable(witnesses) else tuple(witnesses)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.directory)!r})"

    def append(self, event: AuditEvent, actor: Caller) -> dict[str, Any]:
        """Add one record, durably (fsync) and under an exclusive lock, and return it.

        Refuses (``AuditLogError``) when the log does not end where its checkpoint says: appending would
        hide records cut from the end, so the damage is reported instead (``esg-report audit verify``).

        Then, still under the lock, gives the record to each witness, with any earlier records it did not
        take. A witness that does not take it makes the append fail (``AuditLogError``): the caller's action
        must not happen unwitnessed. The record stays in the local log (the attempt happened; a deletion
        recorded after the fact did happen) and is owed to that witness: given again with the next record.
        """
        self.witnesses  # noqa: B018 (misconfigured witnesses refuse before anything is written)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise AuditLogError(f"cannot open the audit log {self.path}: {error.strerror or error}") from None
        with os.fdopen(fd, "ab") as log:
            # One writer at a time across processes (the job, readers, retention); released on close.
            fcntl.flock(log.fileno(), fcntl.LOCK_EX)
            last = self._last_record()
            self._check_checkpoint(last)
            record = _new_record(event, actor, last)
            try:
                log.write(_line(record))
                log.flush()
                os.fsync(log.fileno())
                with atomic_file(self.checkpoint_path) as checkpoint:
                    checkpoint.write(_line({"seq": record["seq"], "hash": record["hash"]}))
            except OSError as error:
                raise AuditLogError(
                    f"cannot write the audit log {self.path}: {error.strerror or error}"
                ) from None
            self._give_to_witnesses(record)
        return record

    @property
    def witnesses(self) -> tuple[AuditWitness, ...]:
        if self._witnesses is None:
            try:
                self._witnesses = tuple(self._make_witnesses())  # type: ignore[misc]
            except ValueError as error:  # names the setting
                raise AuditLogError(f"the audit witnesses are misconfigured: {error}") from None
        return self._witnesses

    def owed(self) -> dict[str, list[tuple[int, str]]]:
        """Per kind of witness (``syslog``, ``s3``), the records (number, hash) it has not taken yet."""
        try:
            document = json.loads(self.owed_path.read_bytes())
            return {str(kind): [(int(seq), str(sha)) for seq, sha in due] for kind, due in document.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError):
            # Damaged: what was owed is not given again, and esg-report audit verify names those records.
            return {}

    def _give_to_witnesses(self, record: dict[str, Any]) -> None:
        witnesses = self.witnesses
        if not witnesses:
            return
        # Owed before it is given: a process killed while giving leaves it owed, and the next append gives it.
        # Only records the log itself failed to give are given again, never whatever else the log holds: a
        # record added to the file by hand is not passed on to the witnesses by the next append.
        this = (record["seq"], record["hash"])
        owed = self.owed()
        for witness in witnesses:
            owed.setdefault(witness.kind, []).append(this)
        failures = self._save_owed(owed)
        if not failures:
            due = {this: record, **self._owed_records(owed, this)}
            for witness in witnesses:
                owed[witness.kind] = self._give(witness, owed[witness.kind], due, failures)
            failures += self._save_owed(owed)
        if failures:
            raise AuditLogError(
                f"audit record {record['seq']} is in the local log, but not every witness took it "
                f"({'; '.join(failures)}): an action that cannot be witnessed must not happen; what a "
                "witness did not take is given again with the next record (docs/runbook.md, 'Audit witness "
                "down')"
            )

    @staticmethod
    def _give(
        witness: AuditWitness,
        owed: list[tuple[int, str]],
        due: dict[tuple[int, str], dict[str, Any]],
        failures: list[str],
    ) -> list[tuple[int, str]]:
        """Give ``witness`` what it is owed, in order, up to the first it does not take; return the rest."""
        for position, (seq, sha) in enumerate(owed):
            if (seq, sha) not in due:
                failures.append(
                    f"record {seq} (hash {sha[:12]}...), owed to {witness.name}, is no longer in the local "
                    "log: it was removed or changed before the witness took it"
                )
                continue
            try:
                witness.take(due[(seq, sha)])
            except WitnessError as error:
                failures.append(f"record {seq}: {error}")
                return owed[position:]
        return []

    def _save_owed(self, owed: dict[str, list[tuple[int, str]]]) -> list[str]:
        left = {kind: [list(item) for item in items] for kind, items in owed.items() if items}
        try:
            if left:
                with atomic_file(self.owed_path) as file:
                    file.write(_line(left))
            else:
                self.owed_path.unlink(missing_ok=True)
        except OSError as error:
            return [f"cannot write {self.owed_path}: {error.strerror or error}"]
        return []

    def _owed_records(
        self, owed: dict[str, list[tuple[int, str]]], this: tuple[int, str]
    ) -> dict[tuple[int, str], dict[str, Any]]:
        """The earlier records still owed to a witness, read from the log (only when there are any)."""
        wanted = {item for items in owed.values() for item in items} - {this}
        if not wanted:
            return {}
        return {
            (kept["seq"], kept["hash"]): kept
            for kept in self.records()
            if (kept.get("seq"), kept.get("hash")) in wanted
        }

    def records(self) -> Iterator[dict[str, Any]]:
        """The records in order; lines that are not records are skipped (``verify`` reports them)."""
        for _, record, _ in self._lines():
            if record is not None:
                yield record

    def verify(self) -> tuple[int, list[str]]:
        """The record count and every problem: edits, deletions, re-orderings, a cut or torn end."""
        problems: list[str] = []
        expected_seq, expected_prev = 1, GENESIS
        count = 0
        last: dict[str, Any] | None = None
        for number, record, raw in self._lines():
            if record is None:
                kind = (
                    "is incomplete (the log was cut or torn here)"
                    if not raw.endswith(b"\n")
                    else "is not a record"
                )
                problems.append(f"line {number} {kind}")
                continue
            count += 1
            seq = record.get("seq")
            if record.get("hash") != record_hash(record):
                problems.append(
                    f"line {number}: record {seq} was edited (its hash does not match its content)"
                )
            if seq != expected_seq:
                problems.append(
                    f"line {number}: record {seq} where record {expected_seq} belongs "
                    "(records were deleted, inserted or re-ordered)"
                )
            if record.get("prev") != expected_prev:
                problems.append(f"line {number}: record {seq} does not chain to the record before it")
            expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
            expected_prev = record.get("hash")
            last = record
        try:
            checkpoint = self.checkpoint()
        except AuditLogError as error:
            return count, [*problems, str(error)]
        if checkpoint is None:
            if last is not None:
                problems.append(f"the checkpoint {self.checkpoint_path} is missing")
        elif last is None:
            problems.append(f"the log is empty or missing, but the checkpoint names record {checkpoint.seq}")
        elif (checkpoint.seq, checkpoint.hash) == (last.get("seq", 0) - 1, last.get("prev")):
            problems.append(
                f"the checkpoint names record {checkpoint.seq}, one before the last: an append was "
                "interrupted before its checkpoint was written (the next append completes it)"
            )
        elif (checkpoint.seq, checkpoint.hash) != (last.get("seq"), last.get("hash")):
            problems.append(
                f"the log ends at record {last.get('seq')}, but the checkpoint names record {checkpoint.seq} "
                f"(hash {checkpoint.hash[:12]}...): records were cut from the end or the last one was changed"
            )
        return count, problems

    def checkpoint(self) -> Checkpoint | None:
        try:
            document = json.loads(self.checkpoint_path.read_bytes())
            return Checkpoint(int(document["seq"]), str(document["hash"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise AuditLogError(f"the audit checkpoint {self.checkpoint_path} is not valid JSON") from None

    def _lines(self) -> Iterator[tuple[int, dict | None, bytes]]:
        try:
            log = self.path.open("rb")
        except FileNotFoundError:
            return
        with log:
            for number, line in enumerate(log, start=1):
                yield number, _parse(line), line

    def _last_record(self) -> dict[str, Any] | None:
        try:
            with self.path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - _TAIL_BYTES))
                tail = log.read()
        except FileNotFoundError:
            return None
        if not tail:
            return None
        if not tail.endswith(b"\n"):
            raise AuditLogError(
                f"the audit log {self.path} ends with an incomplete record (cut or torn); nothing more is "
                "appended until it is repaired: run esg-report audit verify"
            )
        record = _parse(tail.splitlines()[-1] + b"\n")
        if record is None:
            raise AuditLogError(
                f"the last line of the audit log {self.path} is not a record: run esg-report audit verify"
            )
        return record

    def _check_checkpoint(self, last: dict[str, Any] | None) -> None:
        checkpoint = self.checkpoint()
        if checkpoint is None:
            if last is not None:
                raise AuditLogError(
                    f"the audit checkpoint {self.checkpoint_path} is missing: run esg-report audit verify"
                )
            return
        if last is None:
            raise AuditLogError(f"the audit log {self.path} is missing or empty but its checkpoint is not")
        # The checkpoint is written just after the record, so a crash between the two leaves it one behind.
        if (checkpoint.seq, checkpoint.hash) not in (
            (last["seq"], last["hash"]),
            (last["seq"] - 1, last["prev"]),
        ):
            raise AuditLogError(
                f"the audit log {self.path} does not end where its checkpoint says (record "
                f"{checkpoint.seq}); records were removed or changed: run esg-report audit verify"
            )


def _new_record(event: AuditEvent, actor: Caller, last: dict[str, Any] | None) -> dict[str, Any]:
    record = {
        "seq": last["seq"] + 1 if last else 1,
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "user": actor.user,
        "os_user": actor.os_user,
        "host": actor.host,
        "action": event.action,
        "file": event.file,
        "day": event.day.isoformat() if event.day else None,
        "sha256": event.sha256,
        "outcome": event.outcome,
        "detail": event.detail,
        "run_id": event.run_id,
        "prev": last["hash"] if last else GENESIS,
    }
    record["hash"] = record_hash(record)
    return record


def _line(record: dict[str, Any]) -> bytes:
    return record_line(record).encode() + b"\n"


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
