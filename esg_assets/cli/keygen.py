"""``esg-report keygen --output PATH [--rotate]``: a new key file, or a new primary key in one."""

from __future__ import annotations

import argparse

from esg_assets.lib.crypto.keys import add_key, generate_key_file


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
