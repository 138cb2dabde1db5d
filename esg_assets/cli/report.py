"""esg-report: the command line tool for the day's report files (keys, decryption, verification, audit)."""

from __future__ import annotations

import argparse
import sys
from typing import Protocol

from pydantic import ValidationError

from esg_assets.cli.audit import AuditCommand
from esg_assets.cli.common import EXIT_FAILED, EXIT_USAGE, PROG, CommandError
from esg_assets.cli.decrypt import DecryptCommand
from esg_assets.cli.healthcheck import HealthcheckCommand
from esg_assets.cli.history import HistoryCommand
from esg_assets.cli.keygen import KeygenCommand
from esg_assets.cli.readers import ReadersCommand
from esg_assets.cli.rerun import RerunCommand
from esg_assets.cli.subject import SubjectCommand
from esg_assets.cli.verify import VerifyCommand
from esg_assets.config.site_config import SiteConfigError
from esg_assets.core.private_files import make_process_private
from esg_assets.core.setting_values import BadSettingError, setting_problem
from esg_assets.core.settings import MissingSettingError
from esg_assets.lib.access.reader_keys import ReadersFileError
from esg_assets.lib.crypto.keyring import KeyringError
from esg_assets.lib.crypto.keys import KeyFileError


class Subcommand(Protocol):
    """One ``esg-report`` subcommand; a module with these two functions qualifies."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Other modules add their subcommands here: any object with add_parser(subparsers, name) and run(args).
SUBCOMMANDS: dict[str, Subcommand] = {
    "keygen": KeygenCommand(),
    "decrypt": DecryptCommand(),
    "healthcheck": HealthcheckCommand(),
    "rerun": RerunCommand(),
    "history": HistoryCommand(),
    "verify": VerifyCommand(),
    "audit": AuditCommand(),
    "subject": SubjectCommand(),
    "readers": ReadersCommand(),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Tools for the day's ESG report files.")
    subparsers = parser.add_subparsers(metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        command.add_parser(subparsers, name).set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    make_process_private()  # a decrypted file, key file, warehouse or log it creates: never group-readable
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        return _fail(str(error), error.exit_code)
    except (MissingSettingError, BadSettingError, KeyFileError, SiteConfigError) as error:  # configuration
        return _fail(str(error), EXIT_USAGE)
    except ValidationError as error:  # a resource built from a bad setting: its message names the variable
        return _fail(setting_problem(error), EXIT_USAGE)
    except (KeyringError, ReadersFileError) as error:  # KMS refused, a readers list refused: nothing written
        return _fail(str(error), EXIT_FAILED)


def _fail(message: str, exit_code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
