"""``esg-report readers add|remove|list``: the readers whose own keys every new file is also encrypted to."""

from __future__ import annotations

import argparse
from pathlib import Path

from esg_assets.cli.common import EXIT_FAILED, EXIT_USAGE, CommandError, audit_log, caller_of
from esg_assets.config.environment import now
from esg_assets.core.settings import READERS_FILE
from esg_assets.lib.access.reader_keys import (
    ReadersFileError,
    load_readers,
    new_reader,
    readers_lock,
    save_readers,
)
from esg_assets.lib.audit.log import DONE, READERS_ADD, READERS_REMOVE, AuditEvent, AuditLogError


class ReadersCommand:
    """``readers add --name N --public-key PATH``, ``readers remove --name N``, ``readers list``."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="manage the readers whose own RSA keys can decrypt the files published from now on",
            description=(
                f"The list in {READERS_FILE.name}, which only its owner (root or the service account) can "
                "change. Every file published after a reader is added is also encrypted to their public key, "
                "so they decrypt it with their private key alone; after a reader is removed, no new file is. "
                "Changes are recorded in the audit log."
            ),
        )
        actions = parser.add_subparsers(metavar="ACTION", required=True)
        add = actions.add_parser("add", help="add a reader, or replace the key of one")
        add.add_argument("--name", required=True, help="the reader's user name")
        add.add_argument("--public-key", required=True, type=Path, metavar="PEM", help="their RSA public key")
        add.set_defaults(readers_action=_add)
        remove = actions.add_parser(
            "remove", help="remove a reader: files published from now on exclude them"
        )
        remove.add_argument("--name", required=True)
        remove.set_defaults(readers_action=_remove)
        actions.add_parser(
            "list", help="the readers, their key fingerprints and when they were added"
        ).set_defaults(readers_action=_list)
        return parser

    def run(self, args: argparse.Namespace) -> int:
        path = now(READERS_FILE)
        if not path:
            raise CommandError(f"{READERS_FILE.name} is not set: it names the readers file", EXIT_USAGE)
        try:
            if args.readers_action is _list:
                return _list(Path(path), args)
            with readers_lock(path):  # read, audit and write as one change: two at once never undo each other
                return args.readers_action(Path(path), args)
        except ReadersFileError as error:
            raise CommandError(str(error), EXIT_FAILED) from None


def _current(path: Path) -> list:
    return load_readers(path) if path.exists() else []


def _add(path: Path, args: argparse.Namespace) -> int:
    try:
        key = args.public_key.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.public_key}: {error.strerror or error}", EXIT_USAGE) from None
    reader = new_reader(args.name, key)
    readers = [existing for existing in _current(path) if existing.name != reader.name] + [reader]
    _record(READERS_ADD, path, f"reader {reader.name}, key sha256:{reader.fingerprint}")
    save_readers(path, sorted(readers, key=lambda r: r.name))
    print(
        f"added {reader.name} (key sha256:{reader.fingerprint}): files published from now on are "
        "encrypted to it"
    )
    return 0


def _remove(path: Path, args: argparse.Namespace) -> int:
    readers = _current(path)
    kept = [reader for reader in readers if reader.name != args.name]
    if len(kept) == len(readers):
        raise CommandError(f"{args.name} is not a reader in {path}", EXIT_FAILED)
    _record(READERS_REMOVE, path, f"reader {args.name}")
    save_readers(path, kept)
    print(
        f"removed {args.name}: files published from now on are not encrypted to their key "
        "(files already published still are, until retention deletes them)"
    )
    return 0


def _list(path: Path, args: argparse.Namespace) -> int:
    for reader in _current(path):
        print(f"{reader.name}\tsha256:{reader.fingerprint}\tadded {reader.added_at}")
    return 0


def _record(action: str, path: Path, detail: str) -> None:
    # Before the change: a change to who can read that cannot be recorded does not happen.
    log = audit_log()
    try:
        log.append(AuditEvent(action, DONE, file=str(path), detail=detail), caller_of(log.directory))
    except AuditLogError as error:
        raise CommandError(f"{error}; the readers were not changed", EXIT_FAILED) from None
