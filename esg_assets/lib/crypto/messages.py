"""The day's files as AWS Encryption SDK messages, each bound to its identity by its encryption context.

Framed streaming messages (64 KiB frames), the SDK's default suite under ``REQUIRE_ENCRYPT_REQUIRE_DECRYPT``:
AES-256-GCM with HKDF-SHA512 and key commitment, signed with ECDSA P-384. The encryption context (file name,
partition day, kind, schema version, run id) is authenticated with the message and stored in its header, so
a reader checks which file it holds before it trusts a byte of it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError, SerializationError
from cryptography.exceptions import InvalidSignature, InvalidTag

from esg_assets.lib.crypto.keyring import Keyring

FRAME_LENGTH = 64 * 1024
# A header may carry at most this many wrapped data keys: a forged header cannot make a reader try thousands.
MAX_ENCRYPTED_DATA_KEYS = 64
_RESERVED_PREFIX = "aws-crypto-"  # the SDK's own context keys (the signing key)

_CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
)


class DecryptionError(Exception):
    """A message cannot be decrypted, or is not the file it should be; the message says why."""


@dataclass(frozen=True)
class FileIdentity:
    """What a file is, as its encryption context says: compared field by field before a file is trusted."""

    file_name: str  # the plaintext name, e.g. FirmESGRatings_20261124.csv
    partition_day: date
    kind: str  # ratings, errors, manifest
    schema_version: int
    run_id: str

    def context(self) -> dict[str, str]:
        return {
            "file_name": self.file_name,
            "partition_day": self.partition_day.isoformat(),
            "kind": self.kind,
            "schema_version": str(self.schema_version),
            "run_id": self.run_id,
        }

    def mismatches(self, context: Mapping[str, str]) -> list[str]:
        """Each field of ``context`` (a message's) that differs from this identity, in words."""
        return context_mismatches(self.context(), context)


def context_mismatches(expected: Mapping[str, str], context: Mapping[str, str]) -> list[str]:
    """Each field of a message's ``context`` differing from ``expected``, in words (the SDK's keys aside)."""
    found = {key: value for key, value in context.items() if not key.startswith(_RESERVED_PREFIX)}
    problems = [
        f"its {key} is {found[key]!r}, not {value!r}" if key in found else f"it has no {key}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
    problems += [
        f"it has an unexpected {key} {found[key]!r}" for key in sorted(found.keys() - expected.keys())
    ]
    return problems


class _Pending(io.RawIOBase):
    """Plaintext written so far and not yet encrypted: the encryptor's source, read only in whole frames."""

    def __init__(self):
        super().__init__()
        self.data = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) if size is None or size < 0 else min(size, len(self.data))
        chunk = bytes(self.data[:size])
        del self.data[:size]
        return chunk


class EncryptingWriter:
    """The writable object ``encrypting_writer`` yields: whole frames are encrypted as soon as they are full.

    The SDK's encryptor pulls from a source; this turns the job's writers, which push, into that source: it
    is asked only for whole frames while more may follow, and for the rest once the block ends. At most one
    frame of plaintext is held.
    """

    def __init__(self, sink: BinaryIO, keyring: Keyring, identity: FileIdentity):
        self._sink = sink
        self._pending = _Pending()
        self._encryptor = _CLIENT.stream(
            mode="e",
            source=self._pending,
            key_provider=keyring.encrypting,
            encryption_context=identity.context(),
            frame_length=FRAME_LENGTH,
        )
        self._size = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a finished encrypted message")
        self._pending.data += data
        size = len(memoryview(data).cast("B"))
        self._size += size
        while len(self._pending.data) >= FRAME_LENGTH:
            self._drain()
            whole_frames = len(self._pending.data) // FRAME_LENGTH * FRAME_LENGTH
            self._sink.write(self._encryptor.read(whole_frames))
        return size

    def flush(self) -> None:
        """Flushes the sink only: a partial frame cannot be written before the message ends."""
        self._sink.flush()

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._size

    def _drain(self) -> None:
        # What the encryptor produced beyond what was last asked of it (the header, frame overhead).
        buffered = len(self._encryptor.output_buffer)
        if buffered:
            self._sink.write(self._encryptor.read(buffered))

    def finish(self) -> None:
        self._drain()
        self._sink.write(self._encryptor.read())  # the last frame and the signature
        self._encryptor.close()
        self.closed = True


@contextmanager
def encrypting_writer(sink: BinaryIO, keyring: Keyring, identity: FileIdentity) -> Iterator[EncryptingWriter]:
    """Encrypt what is written to the yielded object into ``sink``, bound to ``identity``.

    On a clean exit the message is completed (last frame, signature); on an exception nothing more is
    written, so the partial output can never be mistaken for a complete file (it does not decrypt).
    """
    writer = EncryptingWriter(sink, keyring, identity)
    yield writer
    writer.finish()


def encrypt_bytes(plaintext: bytes, keyring: Keyring, identity: FileIdentity) -> bytes:
    sink = io.BytesIO()
    with encrypting_writer(sink, keyring, identity) as writer:
        writer.write(plaintext)
    return sink.getvalue()


def decrypted_chunks(source: BinaryIO, keyring: Keyring, expected: FileIdentity) -> Iterator[bytes]:
    """Yield the plaintext of ``source``, frame by frame, once its header proves it is the ``expected`` file.

    Raises ``DecryptionError`` at the first problem: a wrong identity (named field by field), a key that is
    not ours, a tampered or truncated message. Each frame is authenticated before it is yielded, but the
    signature covers the whole message: only an iteration that ends without error proves the file complete
    and unaltered, so a consumer must discard what it received on error.
    """
    decryptor = _CLIENT.stream(mode="d", source=source, key_provider=keyring.decrypting)
    try:
        problems = expected.mismatches(decryptor.header.encryption_context)
        if problems:
            raise DecryptionError(
                f"this is not {expected.file_name} of {expected.partition_day} ({expected.kind}): "
                + "; ".join(problems)
            )
        while True:
            chunk = decryptor.read(FRAME_LENGTH)
            if not chunk:
                break
            yield chunk
    except (AWSEncryptionSDKClientError, InvalidTag, InvalidSignature, UnicodeDecodeError) as error:
        # (The SDK lets a header's non-UTF-8 key provider id through as a UnicodeDecodeError.)
        _abandon(decryptor)
        raise DecryptionError(_reason(error, keyring)) from None
    except BaseException:
        _abandon(decryptor)
        raise
    decryptor.close()  # raises when the message ended before its signature
    if source.read(1):
        raise DecryptionError("unexpected data after the end of the message: bytes were appended")


def _abandon(decryptor) -> None:
    # The SDK's own close() raises "Footer not read" on a message read only in part (and its context manager
    # logs that as an error): the reason is already known, so only the stream itself is closed.
    io.IOBase.close(decryptor)


def decrypt_bytes(ciphertext: bytes, keyring: Keyring, expected: FileIdentity) -> bytes:
    return b"".join(decrypted_chunks(io.BytesIO(ciphertext), keyring, expected))


def encrypt_secret(secret: bytes, keyring: Keyring, context: Mapping[str, str]) -> bytes:
    """A small secret (another system's key) as one message under ``keyring``, bound to ``context``."""
    ciphertext, _ = _CLIENT.encrypt(
        source=secret, key_provider=keyring.encrypting, encryption_context=context
    )
    return ciphertext


def decrypt_secret(message: bytes, keyring: Keyring, expected: Mapping[str, str]) -> bytes:
    """The secret ``encrypt_secret`` made, once its context proves it is the ``expected`` one."""
    try:
        secret, header = _CLIENT.decrypt(source=message, key_provider=keyring.decrypting)
    except (AWSEncryptionSDKClientError, InvalidTag, InvalidSignature, UnicodeDecodeError) as error:
        raise DecryptionError(_reason(error, keyring)) from None
    problems = context_mismatches(expected, header.encryption_context)
    if problems:
        raise DecryptionError("it is not the expected secret: " + "; ".join(problems))
    return secret


def _reason(error: Exception, keyring: Keyring) -> str:
    if isinstance(error, (InvalidTag, InvalidSignature)):
        return "authentication failed: the file was altered (or cut short), or a key of the same id is wrong"
    if isinstance(error, UnicodeDecodeError):
        return "the file's header is corrupt (it is not valid UTF-8 where text is expected)"
    if isinstance(error, DecryptKeyError):
        return (
            f"none of the configured keys can decrypt it ({keyring.description}): "
            "it was encrypted for other keys"
        )
    if isinstance(error, SerializationError):
        detail = error.args[0] if error.args and isinstance(error.args[0], str) else "unreadable"
        return f"the file is truncated or not a valid encrypted message ({detail})"
    return f"{type(error).__name__}: {error}"


class _DecryptedRaw(io.RawIOBase):
    """A read-only raw stream over ``decrypted_chunks``."""

    def __init__(self, chunks: Iterator[bytes]):
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def decrypting_reader(source: BinaryIO, keyring: Keyring, expected: FileIdentity) -> io.BufferedReader:
    """The plaintext of ``source`` as a binary file object; reading raises ``DecryptionError`` as above."""
    return io.BufferedReader(
        _DecryptedRaw(decrypted_chunks(source, keyring, expected)), buffer_size=FRAME_LENGTH
    )
