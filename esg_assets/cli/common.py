"""What every esg-report subcommand shares: exit codes, one-line errors, dates, and the store, keys and audit
log the settings name.

Subcommand modules import these from here, not from esg_assets.cli.report: run as ``python -m
esg_assets.cli.report``, that module is ``__main__``, and a second import of it would make a second
``CommandError`` class that ``main`` does not catch.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import duckdb

from esg_assets.config import resources
from esg_assets.config.environment import now, variable
from esg_assets.core.iso_dates import parse_iso_date
from esg_assets.core.settings import WAREHOUSE_PATH
from esg_assets.lib.access.caller import Caller, current_caller
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.audit.resource import AuditTrailResource
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.report_store.store import ReportStore
from esg_assets.lib.warehouse.encrypted import WarehouseKeyError, WarehouseLockedError
from esg_assets.lib.warehouse.resource import WarehouseMemoryError

PROG = "esg-report"
EXIT_FAILED = 1  # the operation failed: no file for the day, a tampered file, an I/O error
EXIT_USAGE = 2  # the command or the configuration is wrong (argparse uses 2 as well)
EXIT_DENIED = 3  # the caller is not allowed to do this (ESG_AUTHORIZED_READERS)

_PID = re.compile(r"\(PID (\d+)\)")


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exiting with ``exit_code``, no traceback."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def parse_day(text: str) -> date:
    """An argparse type: YYYY-MM-DD exactly, so a date can never carry anything into a file name."""
    try:
        return parse_iso_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


def report_store_resource() -> ReportStoreResource:
    """The report store resource as the job builds it, from the settings now (the site file's, on a host
    that has one); a missing required setting raises naming it, a bad value ``ValueError`` naming it."""
    return resources.report_store_from(now)


def report_store() -> ReportStore:
    """The store ESG_OUTPUT_URI names (ESG_S3_* for s3://); needs no key."""
    try:
        return resources.report_store_from(now, encryption_key_file="").store()
    except ValueError as error:  # its message names the setting and the value
        raise CommandError(str(error), EXIT_USAGE) from None


def keyring() -> Keyring:
    """The keys ESG_KMS_KEY_ID or ESG_ENCRYPTION_KEY_FILE name, chosen as the job chooses them."""
    # The service's keys only: reading needs no readers list (a broken one must not stop a read or a verify).
    return report_store_resource().service_keyring()  # main() turns a key file's or KMS's error into a line


def audit_trail() -> AuditTrailResource:
    return resources.audit_trail(now)


def audit_log() -> AuditLog:
    return audit_trail().log()


def caller_of(service_directory: Path) -> Caller:
    """The person behind this command: the OS user, or the one sudo names when run as the service account."""
    return current_caller(service_directory, variable("SUDO_USER"))


@contextmanager
def warehouse(read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened as the job opens it (encrypted, the service's keys), its failures as one line."""
    database = Path(now(WAREHOUSE_PATH))
    if not database.is_file():
        raise CommandError(
            f"no warehouse at {database} ({WAREHOUSE_PATH.name}): the job has not run here yet, or the "
            "setting points elsewhere",
            EXIT_FAILED,
        )
    try:
        resource = resources.warehouse(now, report_store_resource())
    except ValueError as error:  # ESG_WAREHOUSE_MEMORY_LIMIT is not a memory size
        raise CommandError(str(error), EXIT_USAGE) from None
    try:
        with ExitStack() as opened:
            try:
                connection = opened.enter_context(resource.connect(read_only=read_only))
            except WarehouseLockedError as error:
                raise _unopened(database, str(error.__cause__ or error)) from None
            except WarehouseKeyError as error:
                raise CommandError(str(error), EXIT_FAILED) from None
            yield connection
    except WarehouseMemoryError as error:
        raise CommandError(str(error), EXIT_FAILED) from None


def _unopened(database: Path, cause: str) -> CommandError:
    if "lock" not in cause.lower():
        return CommandError(f"cannot open the warehouse {database}: {cause}", EXIT_FAILED)
    pid = _PID.search(cause)
    holder = f"process {pid.group(1)}" if pid else "another process"
    return CommandError(
        f"the warehouse {database} is locked by {holder}, normally the daily or retention job while a run "
        "writes: DuckDB lets no other process open it then. Try again when the run has finished.",
        EXIT_FAILED,
    )
