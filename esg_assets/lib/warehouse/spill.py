"""How much DuckDB spilled: the peak size of the warehouse's temp directory, sampled while connected.

DuckDB 1.4 keeps no running total of what it spilled (``duckdb_temporary_files()`` lists only the files
that exist now, and the profiler's ``SYSTEM_PEAK_TEMP_DIR_SIZE`` is per query and only with profiling on),
so a thread samples the spill directory's size every ``SAMPLE_SECONDS`` while a connection is open and keeps
the largest size seen in this process. A spill that grows and is freed between two samples is missed: the
figure is a lower bound of the true peak, close for the spills that last longer than a sample (the day-sized
joins and sorts the memory limit is about).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLE_SECONDS = 0.05

_lock = threading.Lock()
_peak_bytes: dict[Path, int] = {}  # spill directory -> the largest size seen in this process


def spill_peak_bytes(directory: Path) -> int:
    """The largest size of ``directory`` seen in this process (the run worker: the run's steps)."""
    with _lock:
        return _peak_bytes.get(directory, 0)


def directory_bytes(directory: Path) -> int:
    """The sizes of the files in ``directory`` added up; 0 when it does not exist (nothing spilled)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:  # DuckDB removed it between the listing and the stat
                    continue
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return total


def _record(directory: Path, size: int) -> None:
    with _lock:
        _peak_bytes[directory] = max(_peak_bytes.get(directory, 0), size)


@contextmanager
def watching_spill(directory: Path) -> Iterator[None]:
    """Sample ``directory``'s size in a background thread while the block runs, and once more at its end."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            _record(directory, directory_bytes(directory))
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, name="esg-spill-watch", daemon=True)
    sampler.start()
    try:
        yield
    finally:
        _record(directory, directory_bytes(directory))
        stop.set()
        sampler.join()
