"""One run of a day at a time: a run holds its day's lock all its life, or fails at once naming the holder.

Whatever launched either run (the schedule, the UI, `dagster asset materialize`, `esg-report rerun`): the
lock is an ``flock`` on ``.esg-day-YYYY-MM-DD.lock`` beside the warehouse, taken when the run initialises
its resources, before any step writes. The kernel gives it to one process only, so two runs started at the
same instant cannot both pass, and releases it when the process ends however it ends (kill -9 included), so
a dead run never blocks its day. The file records its holder (run id, how it was launched, since when, its
process): a refused run names it, and the next holder recognises a run that died holding it. Such a run,
still recorded as started though its process is gone, is marked failed, and that is logged.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from dagster import (
    ConfigurableResource,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    InitResourceContext,
)

from esg_assets.core.keys import PARTITION_TAG
from esg_assets.core.private_files import FILE_MODE, private_directory
from esg_assets.defs.daily_ratings.daily_runs import daily_runs_of

# Statuses of a run that may still be executing. CANCELING too: run monitoring leaves a run it could not
# terminate (a dead in-process run has no worker to stop) CANCELING for good.
RUNNING = (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
# The tag esg-report (and the runbook's queued launches) put on a run to say how it was launched.
LAUNCHED_BY_TAG = "esg/launched_by"
# The tag a refused run gets (value: the holder): it was no failure of the day, so no run_failure alert.
REFUSED_TAG = "esg/refused_day_held_by"
# How long a refused run waits for the holder to write its record (it does so right after taking the lock).
_RECORD_WAIT_SECONDS = 2.0
# A command's subcommands ("asset materialize", "rerun"); options and values (dates, account ids) are not.
_SUBCOMMAND = re.compile(r"[a-z][a-z_-]*")


class DayAlreadyRunningError(RuntimeError):
    """Another run of the same day holds the day's lock; the message names it."""


@dataclass(frozen=True)
class DayHolder:
    """Who holds (or last held) a day's lock."""

    run_id: str
    launched_by: str
    since: str  # ISO 8601, UTC
    pid: int
    host: str

    def describe(self) -> str:
        return f"run {self.run_id} ({self.launched_by}), running since {self.since} (process {self.pid})"


def day_lock_path(folder: Path, partition: str) -> Path:
    """The lock file of a day, hidden beside the warehouse."""
    return folder / f".esg-day-{partition}.lock"


class DayRunLockResource(ConfigurableResource):
    """Holds the run's day for the whole run (every step of the daily graph takes it); see the module."""

    # The day locks live in the warehouse's folder: every run that could write the same warehouse meets them.
    warehouse_path: str

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[DayRunLockResource]:
        run = context.run
        partition = run.tags.get(PARTITION_TAG) if run is not None else None
        if run is None or partition is None or context.instance is None:
            yield self  # not a run of one day (a test building the resource by hand): nothing to hold
            return
        recorded = context.instance.get_run_by_id(run.run_id)
        if recorded is not None and recorded.is_finished:
            # `dagster job execute` initialises the resources again after the run ended, to read its outputs.
            yield self
            return
        with hold_day(
            Path(self.warehouse_path).absolute().parent, partition, run, context.instance, context.log
        ):
            yield self


@contextmanager
def hold_day(folder: Path, partition: str, run: DagsterRun, instance: DagsterInstance, log) -> Iterator[None]:
    """Hold the lock of ``partition`` for the block; ``DayAlreadyRunningError`` when another run holds it."""
    private_directory(folder)
    path = day_lock_path(folder, partition)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _held_by(path, run):
                # A step in a process of its own: its run's worker holds the day (day_locked_executor.py).
                log.info(f"the worker of this run holds {partition} ({path}): this step goes on")
                yield
                return
            holder = _current_holder(path, partition, run, instance)
            if instance.get_run_by_id(run.run_id) is not None:
                instance.add_run_tags(run.run_id, {REFUSED_TAG: holder})
            raise DayAlreadyRunningError(
                f"another run of {partition} is running: {holder}. This run ({run.run_id}) stopped before "
                "writing anything. Let that run finish (Dagster UI, Runs), then run the day again if needed."
            ) from None
        previous = _read_record(fd)
        _write_record(fd, _holder_of(run))
        _settle_earlier_runs(previous, partition, run, instance, log)
        log.info(f"this run holds {partition}: no other run of the day can start until it ends ({path})")
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder_of(run: DagsterRun) -> DayHolder:
    return DayHolder(
        run_id=run.run_id,
        launched_by=launched_by(run),
        since=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        pid=os.getpid(),
        host=socket.gethostname(),
    )


def launched_by(run: DagsterRun, argv: list[str] | None = None) -> str:
    """How the run was launched, from its tags, else from this process's command (no arguments: they may hold
    account ids)."""
    tags = run.tags
    if LAUNCHED_BY_TAG in tags:
        return tags[LAUNCHED_BY_TAG]
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/backfill" in tags:
        return f"backfill {tags['dagster/backfill']}"
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    argv = sys.argv if argv is None else argv
    program = os.path.basename(argv[0]) if argv and argv[0] else "python"
    if program == "__main__.py":  # python -m dagster
        program = os.path.basename(os.path.dirname(argv[0]))
    if program in ("dagster", "esg-report"):
        words = [program]
        for word in argv[1:3]:
            if not _SUBCOMMAND.fullmatch(word):
                break
            words.append(word)
        return " ".join(words)
    return f"launched by {program}"


def _held_by(path: Path, run: DagsterRun) -> bool:
    """Whether the lock's record names ``run`` (waiting briefly for a holder that is writing it)."""
    deadline = time.monotonic() + _RECORD_WAIT_SECONDS
    while True:
        record = _record_at(path)
        if record is not None or time.monotonic() >= deadline:
            return record is not None and record.run_id == run.run_id
        time.sleep(0.1)


def _record_at(path: Path) -> DayHolder | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _read_record(fd)
    finally:
        os.close(fd)


def _current_holder(path: Path, partition: str, run: DagsterRun, instance: DagsterInstance) -> str:
    """The holder's description, from its record once it wrote it, else from the instance."""
    deadline = time.monotonic() + _RECORD_WAIT_SECONDS
    while True:
        record = _record_at(path)
        if record is not None and record.run_id != run.run_id and _may_be_running(instance, record.run_id):
            return record.describe()
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    others = [
        record.dagster_run.run_id
        for record in daily_runs_of(instance, partition, RUNNING)
        if record.dagster_run.run_id != run.run_id
    ]
    if others:
        return f"run {', '.join(others)} (a process of this host holds {path})"
    return f"a process of this host holds {path}"


def _may_be_running(instance: DagsterInstance, run_id: str) -> bool:
    # A run of another instance (a test's, another DAGSTER_HOME) is unknown here: take the record's word.
    found = instance.get_run_by_id(run_id)
    return found is None or found.status in RUNNING


def _settle_earlier_runs(
    previous: DayHolder | None, partition: str, run: DagsterRun, instance: DagsterInstance, log
) -> None:
    """Runs the instance records as executing this day, though this run got the lock: say what they are.

    The previous holder whose process is gone died holding the lock (kill -9, a machine restart): marked
    failed, so it stops counting as running (the run queue, the sensors). Any other is either starting (it
    will be refused at its first step) or died before taking the lock: logged, left alone.
    """
    for record in daily_runs_of(instance, partition, RUNNING):
        other = record.dagster_run
        if other.run_id == run.run_id:
            continue
        if previous is not None and previous.run_id == other.run_id and _process_gone(previous):
            message = (
                f"run {other.run_id} of {partition} ended without a word: its process {previous.pid} is "
                "gone and it no longer holds the day's lock (killed, or its machine restarted); marked "
                f"failed by run {run.run_id}"
            )
            instance.report_run_failed(other, message)
            log.warning(message)
        else:
            log.warning(
                f"run {other.run_id} of {partition} is recorded as {other.status.value} but does not hold "
                "the day's lock: it is starting (it will stop before its first step) or it died before "
                "taking the lock; it is left as it is"
            )


def _process_gone(holder: DayHolder) -> bool:
    if holder.host != socket.gethostname():
        return False  # another machine's process: cannot tell
    if holder.pid == os.getpid():
        return False  # this process: an earlier run of it may still be finishing
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _read_record(fd: int) -> DayHolder | None:
    raw = os.pread(fd, 4096, 0)
    try:
        fields = json.loads(raw)
        return DayHolder(
            run_id=str(fields["run_id"]),
            launched_by=str(fields["launched_by"]),
            since=str(fields["since"]),
            pid=int(fields["pid"]),
            host=str(fields["host"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # empty (a new lock, a holder about to write) or not ours


def _write_record(fd: int, holder: DayHolder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
