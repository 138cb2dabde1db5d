"""Files that appear whole or not at all (written beside their name, fsynced, renamed over it), and the
directory fsync that makes a name survive a crash."""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[BinaryIO]:
    """A new file (mode 0600) that appears as ``path`` only when the block ends cleanly.

    It is written as a hidden temporary file in the same directory, then renamed over ``path``: the rename
    is atomic, so readers see the previous file or the new one, never a partial one, and the fsyncs make
    the content and the name survive a crash once the block has returned. On an exception the temporary
    file is removed and ``path`` is untouched. With ``replace=False`` an existing ``path`` raises
    ``FileExistsError`` instead, even one created while the block ran.
    """
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)  # unlike rename, fails when the name exists
            os.unlink(temp_name)
    except BaseException:
        remove_file(Path(temp_name))
        raise
    _remove_abandoned_temporaries(path)
    fsync_directory(path.parent)


# A temporary file untouched this long was left by a writer that was killed (kill -9, a machine restart)
# before it could remove it; a live writer touches its file far more often than this.
ABANDONED_AFTER_SECONDS = 3600


def _remove_abandoned_temporaries(path: Path) -> None:
    """Remove the temporary files of ``path`` that killed writers left behind (ciphertext, but clutter)."""
    now = time.time()
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                leftover.unlink()
        except FileNotFoundError:
            continue


def remove_file(path: Path) -> bool:
    """Unlink ``path``; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def fsync_directory(directory: Path) -> None:
    """Make the names created, renamed or removed in ``directory`` survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
