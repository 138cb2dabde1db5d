"""SHA-256 and size of a byte stream, taken as it passes through a writer or a reader, never held whole."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class Digest:
    """What passed: its SHA-256 (hex) and its size in bytes."""

    sha256: str
    size: int


class _Hashing:
    def __init__(self):
        self._hash = hashlib.sha256()
        self._size = 0

    def _update(self, data) -> None:
        self._hash.update(data)
        self._size += len(memoryview(data).cast("B"))

    @property
    def digest(self) -> Digest:
        return Digest(self._hash.hexdigest(), self._size)


class HashingWriter(_Hashing):
    """Writes through to ``sink``, hashing what it writes; flush is passed on, closing is the sink owner's."""

    def __init__(self, sink: BinaryIO):
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sink.write(data)
        self._update(data)
        return len(memoryview(data).cast("B"))

    def flush(self) -> None:
        self._sink.flush()


class HashingReader(_Hashing, io.RawIOBase):
    """A raw stream over ``source`` hashing what it returns; ``digest`` covers everything read so far.

    Wrap it in ``io.BufferedReader`` for text parsing: the hash is taken here, below any read-ahead.
    Closing it leaves ``source`` open.
    """

    def __init__(self, source: BinaryIO):
        _Hashing.__init__(self)
        io.RawIOBase.__init__(self)
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self._update(data)
        return size
