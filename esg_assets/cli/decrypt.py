"""``esg-report decrypt``: how a day's file is read, for people on the allow-list, every attempt audited."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from esg_assets.cli.common import (
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_USAGE,
    CommandError,
    audit_log,
    caller_of,
    keyring,
    parse_day,
    report_store,
)
from esg_assets.config.environment import now
from esg_assets.core.atomic_files import atomic_file
from esg_assets.core.file_names import errors_file_name, ratings_file_name
from esg_assets.core.hashing import HashingReader
from esg_assets.core.settings import (
    AUTHORIZED_READERS,
    ENCRYPTION_KEY_FILE,
    KMS_KEY_ID,
    OUTPUT_URI,
    MissingSettingError,
)
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.access.readers import AuthorizedReaders
from esg_assets.lib.audit.log import ALLOWED, DECRYPT, DENIED, FAILED, AuditEvent, AuditLog, AuditLogError
from esg_assets.lib.crypto.keyring import Keyring, KeyringError
from esg_assets.lib.crypto.keys import KeyFileError
from esg_assets.lib.crypto.messages import DecryptionError, decrypted_chunks
from esg_assets.lib.report_store.manifest import ERRORS_KIND, RATINGS_KIND, ManifestError
from esg_assets.lib.report_store.store import ReportStore
from esg_assets.lib.report_store.verification import committed_manifest, unexpected_path


class DecryptCommand:
    """``decrypt --date YYYY-MM-DD [--errors] --output PATH|-``: decrypt the day's file from the store."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="decrypt the day's ratings file (allowed readers only; audited)",
            description=(
                f"Decrypt the day's ratings file from the store named by {OUTPUT_URI.name} with the key of "
                f"{KMS_KEY_ID.name} or {ENCRYPTION_KEY_FILE.name}. Only callers named in "
                f"{AUTHORIZED_READERS.name} (users, group:NAME) may; every attempt is recorded in the "
                "audit log. The file is the one the day's sealed manifest names: it is refused unless its "
                "encryption context names that file, day, kind and run and its SHA-256 is the manifest's. "
                "The output appears only once the whole file is verified. Exit 3 when not allowed."
            ),
        )
        parser.add_argument(
            "--date", required=True, type=parse_day, metavar="YYYY-MM-DD", help="the day of the file"
        )
        parser.add_argument("--errors", action="store_true", help="decrypt the day's error log instead")
        parser.add_argument(
            "--output", required=True, metavar="PATH|-", help="the plaintext CSV (mode 0600), or - for stdout"
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        if args.output != "-" and not Path(args.output).absolute().parent.is_dir():
            raise CommandError(f"--output {args.output}: its directory does not exist", EXIT_USAGE)
        name = errors_file_name(args.date) if args.errors else ratings_file_name(args.date)
        what = f"{'error log' if args.errors else 'ratings file'} for {args.date}"
        log = audit_log()
        caller = caller_of(log.directory)
        trail = _Trail(log, caller, name, args.date)
        try:
            readers = AuthorizedReaders.parse(now(AUTHORIZED_READERS))
        except ValueError as error:
            trail.record(DENIED, detail=str(error))
            raise CommandError(str(error), EXIT_USAGE) from None
        decision = readers.decide(caller)
        if not decision.allowed:
            trail.record(DENIED, detail=decision.reason)
            raise CommandError(f"{caller.user} may not decrypt the {what}: {decision.reason}", EXIT_DENIED)
        store = report_store()
        try:
            keys = keyring()
        except (KeyFileError, KeyringError, MissingSettingError) as error:
            trail.record_failure(str(error))
            raise
        try:
            source = _Source(store, args.date, ERRORS_KIND if args.errors else RATINGS_KIND, what, keys)
            if args.output == "-":
                _decrypt_to_stdout(source, trail)
            else:
                _decrypt_to_file(source, Path(args.output), trail)
        except CommandError as error:
            trail.record_failure(str(error))
            raise
        return 0


class _Trail:
    """The audit records of one decrypt attempt; an access that cannot be recorded does not happen."""

    def __init__(self, log: AuditLog, caller: Caller, name: str, day: date):
        self._log, self._caller, self._name, self._day = log, caller, name, day
        self.recorded = False

    def record(self, outcome: str, sha256: str | None = None, detail: str | None = None) -> None:
        event = AuditEvent(DECRYPT, outcome, file=self._name, day=self._day, sha256=sha256, detail=detail)
        try:
            self._log.append(event, self._caller)
        except AuditLogError as error:
            raise CommandError(f"{error}; nothing was decrypted", EXIT_FAILED) from None
        self.recorded = True

    def record_failure(self, detail: str) -> None:
        # Once the release is recorded as allowed, a later failure (a closed stdout) changes nothing it says.
        if not self.recorded:
            self.record(FAILED, detail=detail)


class _Source:
    """The day's file of one kind, as the day's sealed manifest names it, opened afresh for each pass."""

    def __init__(self, store: ReportStore, day: date, kind: str, what: str, keys: Keyring):
        try:
            manifest = committed_manifest(store, keys, day)
            self.entry = manifest.entry(kind)
        except FileNotFoundError as error:
            raise CommandError(f"no {what}: {error}", EXIT_FAILED) from None
        except ManifestError as error:
            raise CommandError(f"refusing the {what}: {error}", EXIT_FAILED) from None
        except OSError as error:
            reason = error.strerror or error
            raise CommandError(f"cannot read the manifest of the {what}: {reason}", EXIT_FAILED) from None
        unexpected = unexpected_path(self.entry, manifest)
        if unexpected:
            raise CommandError(f"refusing the {what}: {unexpected}", EXIT_FAILED)
        self.store, self.what, self.keys = store, what, keys
        self.identity = manifest.file_identity(self.entry)
        self.uri = store.uri(self.entry.path)

    def decrypt_into(self, consume: Callable[[bytes], object]) -> str:
        """Decrypt frame by frame into ``consume``; returns the SHA-256 of the stored file, the manifest's."""
        try:
            source = self.store.open(self.entry.path)
        except FileNotFoundError:
            raise CommandError(f"no {self.what}: {self.uri} does not exist", EXIT_FAILED) from None
        except OSError as error:
            raise CommandError(f"cannot read {self.uri}: {error.strerror or error}", EXIT_FAILED) from None
        with source:
            stored = HashingReader(source)
            try:
                for chunk in decrypted_chunks(stored, self.keys, self.identity):
                    consume(chunk)
            except DecryptionError as error:
                raise CommandError(f"refusing {self.uri}: {error}", EXIT_FAILED) from None
            sha256 = stored.digest.sha256
        if sha256 != self.entry.stored_sha256:
            raise CommandError(
                f"refusing {self.uri}: its SHA-256 is {sha256}, but the day's manifest lists "
                f"{self.entry.name} with {self.entry.stored_sha256}",
                EXIT_FAILED,
            )
        return sha256


def _decrypt_to_file(source: _Source, output: Path, trail: _Trail) -> None:
    # Written beside the output and renamed into place only after the whole message (every frame, the
    # signature, the identity, the manifest's hash) is verified and the access is recorded, so a tampered
    # file, or an audit log that cannot be written, leaves no plaintext behind.
    try:
        with atomic_file(output) as sink:
            trail.record(ALLOWED, sha256=source.decrypt_into(sink.write))
    except OSError as error:
        raise CommandError(f"cannot write {output}: {error.strerror or error}", EXIT_FAILED) from None


def _decrypt_to_stdout(source: _Source, trail: _Trail) -> None:
    # What reaches stdout cannot be taken back: verify the whole file and record the access first, then
    # decrypt it again. Decryption is cheap next to the cost of a consumer acting on part of a file.
    sha256 = source.decrypt_into(lambda chunk: None)
    trail.record(ALLOWED, sha256=sha256)
    out = sys.stdout.buffer
    try:
        again = source.decrypt_into(out.write)
        out.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from failing on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise CommandError("stdout was closed before the whole file was written", EXIT_FAILED) from None
    if again != sha256:
        raise CommandError(f"{source.uri} was replaced while it was read; run the command again", EXIT_FAILED)
