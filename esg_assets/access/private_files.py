"""The job's own files are private: 0600 files in 0700 directories, whatever umask its process inherited."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def make_process_private() -> None:
    """Everything this process creates from now on gets no group or other bits.

    Process-wide on purpose: it covers what other code creates on the job's behalf (DuckDB's database, WAL and
    spill files, log rotation, Dagster's SQLite files in a process that runs the job), not only our own calls.
    """
    os.umask(PRIVATE_UMASK)


def private_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory, each level this call creates made 0700 (existing ones keep their owner's mode)."""
    target = Path(path).absolute()
    missing = []
    level = target
    while not level.exists():
        missing.append(level)
        level = level.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
    return target


def make_private(path: str | os.PathLike[str]) -> None:
    """Take group and other bits off a file or directory this process owns (made before this policy, say)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(path, info.st_mode & 0o700)
