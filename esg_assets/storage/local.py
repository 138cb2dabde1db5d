"""A report store in a local directory: private modes, atomic and durable publication."""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from esg_assets.storage.file_names import check_file_name

DIRECTORY_MODE = 0o700


class LocalReportStore:
    """Files (mode 0600) under one root directory, created with mode 0700 on the first publication.

    The root is not created before then, so reading from a mistyped root finds nothing instead of
    leaving an empty directory behind.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalReportStore({str(self.root)!r})"

    @contextmanager
    def publish(self, name: str) -> Iterator[BinaryIO]:
        """See ``ReportStore.publish``: written beside the final name, renamed over it on a clean exit."""
        final = self._path(name)
        self._create_root()
        with atomic_file(final) as file:
            yield file

    def open(self, name: str) -> BinaryIO:
        return self._path(name).open("rb")

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def uri(self, name: str) -> str:
        return self._path(name).as_uri()

    def delete(self, name: str) -> None:
        if _remove(self._path(name)):
            _fsync_directory(self.root)

    def list(self, prefix: str = "") -> list[str]:
        try:
            with os.scandir(self.root) as entries:
                return sorted(
                    entry.name
                    for entry in entries
                    # A leading dot marks publications in progress (see atomic_file).
                    if entry.name.startswith(prefix) and not entry.name.startswith(".") and entry.is_file()
                )
        except FileNotFoundError:
            return []

    def _path(self, name: str) -> Path:
        return self.root / check_file_name(name)

    def _create_root(self) -> None:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            return  # an existing directory keeps the mode its owner chose
        os.chmod(self.root, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask


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
        _remove(Path(temp_name))
        raise
    _remove_abandoned_temporaries(path)
    _fsync_directory(path.parent)


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


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
