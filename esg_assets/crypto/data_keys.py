"""What encrypts one file (a data key, its key id, its wrapped form), and where keys come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class DataKeyError(Exception):
    """The key of a file cannot be obtained or unwrapped; the message names the key id, never key material."""


@dataclass(frozen=True)
class DataKey:
    """The key one file is encrypted with.

    ``key_id`` names the key behind it (a key file's key id, or an AWS KMS key ARN) and goes into the file's
    header. ``wrapped_key`` is empty when ``key`` is a key file's key itself; with envelope encryption it is
    ``key`` encrypted by KMS, stored in the header so the file carries what is needed to unwrap it.
    """

    key_id: str
    key: bytes = field(repr=False)
    wrapped_key: bytes = field(default=b"", repr=False)


class KeySource(Protocol):
    """A source of file keys: a key file's ``KeyRing`` or ``KmsKeySource``."""

    def new_data_key(self) -> DataKey:
        """The key for a new file."""
        ...

    def data_key(self, key_id: str, wrapped_key: bytes) -> bytes:
        """The key of an existing file from its header; raises ``DataKeyError`` when it cannot be had."""
        ...
