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


def private_directory(path: str | os.PathLike[str]) -> list[Path]:
    """Make ``path`` a directory; return the levels this call created (outermost first), each made 0700.

    Levels that already existed keep the mode their owner gave them.
    """
    missing = []
    level = Path(path).absolute()
    while not level.exists():
        missing.append(level)
        level = level.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
        created.append(directory)
    return created


def make_private(path: str | os.PathLike[str]) -> None:
    """Take group and other bits off a file or directory this process owns (made before this policy, say)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(path, info.st_mode & 0o700)
