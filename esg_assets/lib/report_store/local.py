"""A report store in a local directory: private modes, atomic and durable publication."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from esg_assets.core.atomic_files import atomic_file, fsync_directory, remove_file
from esg_assets.core.file_names import check_file_name, check_stored_name
from esg_assets.core.private_files import private_directory
from esg_assets.lib.report_store.locks import LockedError

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
        self._create_folders(final.parent)
        with atomic_file(final) as file:
            yield file

    def open(self, name: str) -> BinaryIO:
        return self._path(name).open("rb")

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def uri(self, name: str) -> str:
        return self._path(name).as_uri()

    def delete(self, name: str) -> None:
        path = self._path(name)
        if remove_file(path):
            fsync_directory(path.parent)
        self._remove_empty_folders(path.parent)

    def _remove_empty_folders(self, folder: Path) -> None:
        """Folders left empty go too (a set's version folder once its last file is deleted)."""
        while folder != self.root:
            for leftover in folder.glob(".*.tmp"):  # temporaries of killed writers (atomic_file)
                remove_file(leftover)
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                break
            fsync_directory(folder.parent)
            folder = folder.parent

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """See ``ReportStore.exclusive``: ``flock`` on the hidden file ``.<name>`` (0600), never deleted."""
        self._create_root()
        lock_path = self.root / f".{check_file_name(name)}"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(f"{lock_path} is held by another process") from None
            yield
        finally:
            os.close(fd)  # releases the lock

    def subfolders(self, name: str) -> list[str]:
        """The names of the folders directly in the folder ``name`` (hidden ones aside)."""
        try:
            with os.scandir(self._path(name)) as entries:
                return sorted(
                    e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete_folder(self, name: str) -> None:
        """Remove the folder ``name`` and all in it, temporaries of killed writers included."""
        folder = self._path(name)
        if not folder.is_dir() or folder.is_symlink():
            return
        shutil.rmtree(folder)
        fsync_directory(folder.parent)
        self._remove_empty_folders(folder.parent)

    def list(self, prefix: str = "") -> list[str]:
        """Every stored name starting with ``prefix``, in folders too (``a/b/c``)."""
        names = []
        for folder, subfolders, files in os.walk(self.root):
            relative = Path(folder).relative_to(self.root)
            # A leading dot marks publications in progress (see atomic_file).
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            for name in files:
                stored = (relative / name).as_posix()
                if not name.startswith(".") and stored.startswith(prefix):
                    names.append(stored)
        return sorted(names)

    def _path(self, name: str) -> Path:
        """Where ``name`` is; ``OSError`` when any level under the root is a symbolic link.

        A link planted in the store (a versions folder pointing elsewhere) would otherwise make publishing
        write, and cleaning up delete, outside it.
        """
        path = self.root
        for part in check_stored_name(name).split("/"):
            path = path / part
            if path.is_symlink():
                raise OSError(
                    errno.ELOOP, f"refusing {path}: nothing in the report store may be a symbolic link"
                )
        return path

    def _create_folders(self, folder: Path) -> None:
        for created in private_directory(folder):
            fsync_directory(created.parent)  # the new folder's name survives a crash

    def _create_root(self) -> None:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            return  # an existing directory keeps the mode its owner chose
        os.chmod(self.root, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
