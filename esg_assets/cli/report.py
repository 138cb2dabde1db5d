"""esg-report: the command line tool for the day's report files (key files, decryption)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import date
from pathlib import Path
from typing import BinaryIO, Protocol

from esg_assets.cli.rerun import RerunCommand
from esg_assets.crypto.keys import KeyFileError, KeyRing, add_key, generate_key_file, load_key_ring
from esg_assets.crypto.stream_cipher import DecryptionError, decrypt_stream
from esg_assets.settings import ENCRYPTION_KEY_FILE, OUTPUT_URI, MissingSettingError
from esg_assets.storage.file_names import ratings_file_name
from esg_assets.storage.local import atomic_file
from esg_assets.storage.report_store import ReportStore, report_store_for

PROG = "esg-report"
EXIT_FAILED = 1  # the operation failed: no file for the day, a tampered file, an I/O error
EXIT_USAGE = 2  # the command or the configuration is wrong (argparse uses 2 as well)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Subcommand(Protocol):
    """One ``esg-report`` subcommand; a module with these two functions qualifies."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser: ...

    def run(self, args: argparse.Namespace) -> int: ...


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exiting with ``exit_code``, no traceback."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class KeygenCommand:
    """``keygen --output PATH [--rotate]``: create a key file, or add a new primary key to one."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="create a key file, or rotate: add a new primary key to one",
            description="Create a key file (mode 0600) and print its key id; never the key itself.",
        )
        parser.add_argument("--output", required=True, metavar="PATH", help="the key file")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="add a new primary key to the existing file; its older keys stay to decrypt older files",
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        key_id = add_key(args.output) if args.rotate else generate_key_file(args.output)
        print(key_id)
        return 0


class DecryptCommand:
    """``decrypt --date YYYY-MM-DD --output PATH|-``: decrypt the day's ratings file from the store."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="decrypt the day's ratings file",
            description=(
                f"Decrypt the day's ratings file from the store named by {OUTPUT_URI.name} with the key "
                f"file named by {ENCRYPTION_KEY_FILE.name}. The output appears only once the whole file "
                "is verified."
            ),
        )
        parser.add_argument(
            "--date", required=True, type=_day, metavar="YYYY-MM-DD", help="the day of the file"
        )
        parser.add_argument(
            "--output", required=True, metavar="PATH|-", help="the plaintext CSV (mode 0600), or - for stdout"
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        if args.output != "-" and not Path(args.output).absolute().parent.is_dir():
            raise CommandError(f"--output {args.output}: its directory does not exist", EXIT_USAGE)
        store = _report_store()
        key_ring = _key_ring()
        name = ratings_file_name(args.date)
        try:
            source = store.open(name)
        except FileNotFoundError:
            raise CommandError(
                f"no ratings file for {args.date}: {store.uri(name)} does not exist", EXIT_FAILED
            ) from None
        except OSError as error:
            raise CommandError(
                f"cannot read {store.uri(name)}: {error.strerror or error}", EXIT_FAILED
            ) from None
        try:
            with source:
                if args.output == "-":
                    _decrypt_to_stdout(source, key_ring)
                else:
                    _decrypt_to_file(source, key_ring, Path(args.output))
        except DecryptionError as error:
            raise CommandError(f"cannot decrypt {store.uri(name)}: {error}", EXIT_FAILED) from None
        return 0


# Other modules add their subcommands here: any object with add_parser(subparsers, name) and run(args).
SUBCOMMANDS: dict[str, Subcommand] = {
    "keygen": KeygenCommand(),
    "decrypt": DecryptCommand(),
    "rerun": RerunCommand(),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Tools for the day's ESG report files.")
    subparsers = parser.add_subparsers(metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        command.add_parser(subparsers, name).set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        return _fail(str(error), error.exit_code)
    except (MissingSettingError, KeyFileError) as error:  # configuration: the setting or the key file
        return _fail(str(error), EXIT_USAGE)


def _fail(message: str, exit_code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return exit_code


def _day(text: str) -> date:
    try:
        if not _DAY.fullmatch(text):  # fromisoformat alone also takes 20261125 and week dates
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


def _report_store() -> ReportStore:
    uri = OUTPUT_URI.value()
    try:
        return report_store_for(uri)
    except ValueError as error:  # its message names the setting and the value
        raise CommandError(str(error), EXIT_USAGE) from None
    except NotImplementedError as error:
        raise CommandError(f"{OUTPUT_URI.name}={uri}: {error}", EXIT_USAGE) from None


def _key_ring() -> KeyRing:
    return load_key_ring(ENCRYPTION_KEY_FILE.value())


def _decrypt_to_file(source: BinaryIO, key_ring: KeyRing, output: Path) -> None:
    # Written beside the output and renamed into place once every segment is verified, so a tampered or
    # truncated file leaves no plaintext behind.
    try:
        with atomic_file(output) as sink:
            for segment in decrypt_stream(source, key_ring):
                sink.write(segment)
    except OSError as error:
        raise CommandError(f"cannot write {output}: {error.strerror or error}", EXIT_FAILED) from None


def _decrypt_to_stdout(source: BinaryIO, key_ring: KeyRing) -> None:
    # What reaches stdout cannot be taken back: verify the whole file first, then decrypt it again.
    # Decryption is cheap next to the cost of a consumer acting on part of a file.
    if source.seekable():
        for _ in decrypt_stream(source, key_ring):
            pass
        source.seek(0)
    out = sys.stdout.buffer
    try:
        for segment in decrypt_stream(source, key_ring):
            out.write(segment)
        out.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from failing on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise CommandError("stdout was closed before the whole file was written", EXIT_FAILED) from None


if __name__ == "__main__":
    sys.exit(main())
