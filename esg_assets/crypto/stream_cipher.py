"""Streaming authenticated encryption (AES-256-GCM, STREAM construction) of the day's files.

Why this format: the ratings file can reach ~150 MB, so it is encrypted and decrypted as a stream of
fixed-size segments and never held whole in memory. Each segment is its own AES-GCM message, so each is
authenticated on its own: a reader can verify and release the file segment by segment. The plaintext of a
segment is never released before its tag is verified. Segment nonces follow the STREAM construction (as in
Google Tink's AES-GCM-HKDF streaming AEAD): a per-file random prefix, the segment's position and a flag
marking the last segment. So re-ordered, duplicated or dropped segments fail authentication, and a file cut
at any point, even exactly between two segments, is detected because no segment flagged "last" is found.

Layout (all integers big-endian)::

    header   magic "ESGENC1\\0" (8) | version (1) | segment size (4) | key id length (1) | key id
             | [version 2 only: wrapped key length (2) | wrapped key] | salt (32) | nonce prefix (7)
    segments AES-GCM(subkey, nonce, plaintext segment, aad=header) = ciphertext || 16-byte tag, each
             segment holding exactly "segment size" plaintext bytes except the last (0 to segment size)

    subkey = HKDF-SHA256(key, salt, info=header), so every file has its own key and any change to the
             header (key id, segment size, salt, nonce prefix...) makes every segment fail
    key    = version 1: the key file's key named by the key id; version 2 (envelope encryption): a fresh
             data key per file, stored wrapped by the AWS KMS key the key id names (``esg_assets.crypto.kms``)
    nonce  = nonce prefix (7) || segment counter (4) || last-segment flag (1)

Segments are numbered from 0 in messages, as in the nonce.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from esg_assets.crypto.data_keys import DataKey, DataKeyError, KeySource
from esg_assets.crypto.keys import UnknownKeyIdError

MAGIC = b"ESGENC1\x00"
FORMAT_VERSION = 1  # a key file's key, named by the key id
ENVELOPE_FORMAT_VERSION = 2  # a data key wrapped by KMS, stored in the header
_VERSIONS = (FORMAT_VERSION, ENVELOPE_FORMAT_VERSION)
DEFAULT_SEGMENT_SIZE = 64 * 1024
# Bounds a reader accepts before the header is authenticated: a forged size must not make it allocate GiBs.
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
_MAX_SEGMENTS = 2**32  # the 4-byte counter of the nonce
_FIXED = struct.Struct(">8sBIB")  # magic, version, segment size, key id length
_WRAPPED_LENGTH = struct.Struct(">H")


class DecryptionError(Exception):
    """An encrypted file cannot be decrypted; the message says why."""


@dataclass(frozen=True)
class _Header:
    segment_size: int
    key_id: str
    wrapped_key: bytes
    salt: bytes
    nonce_prefix: bytes
    raw: bytes  # the header exactly as stored: the AAD of every segment and the HKDF info


def _build_header(data_key: DataKey, segment_size: int) -> _Header:
    encoded_id = data_key.key_id.encode("ascii")
    if not 1 <= len(encoded_id) <= 255:
        raise ValueError("a key id must be 1 to 255 ASCII characters")
    salt = os.urandom(SALT_SIZE)
    nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
    wrapped = data_key.wrapped_key
    if wrapped:
        version = ENVELOPE_FORMAT_VERSION
        wrapped_field = _WRAPPED_LENGTH.pack(len(wrapped)) + wrapped
    else:
        # Files of a key file keep the version 1 layout, byte for byte.
        version, wrapped_field = FORMAT_VERSION, b""
    fixed = _FIXED.pack(MAGIC, version, segment_size, len(encoded_id))
    raw = fixed + encoded_id + wrapped_field + salt + nonce_prefix
    return _Header(segment_size, data_key.key_id, wrapped, salt, nonce_prefix, raw)


def _segment_cipher(key: bytes, header: _Header) -> AESGCM:
    subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=header.salt, info=header.raw).derive(key)
    return AESGCM(subkey)


def _nonce(header: _Header, counter: int, last: bool) -> bytes:
    if counter >= _MAX_SEGMENTS:
        raise OverflowError("a stream holds at most 2**32 segments")
    return header.nonce_prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """The file-like object ``encrypting_writer`` yields: buffers one segment, encrypts it when full."""

    def __init__(self, sink: BinaryIO, keys: KeySource, segment_size: int):
        self._sink = sink
        data_key = keys.new_data_key()
        self._header = _build_header(data_key, segment_size)
        self._cipher = _segment_cipher(data_key.key, self._header)
        self.key_id = data_key.key_id  # the key behind this file, as its header names it
        self._segment_size = segment_size
        self._buffer = bytearray()
        self._counter = 0
        self._plaintext_size = 0
        self.closed = False
        sink.write(self._header.raw)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a finished encrypted stream")
        view = memoryview(data).cast("B")
        size = len(view)
        while view:
            # A full buffer is only encrypted once more data arrives: until then it may be the last segment.
            if len(self._buffer) == self._segment_size:
                self._emit(last=False)
            take = min(self._segment_size - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
        self._plaintext_size += size
        return size

    def flush(self) -> None:
        """Flushes the sink only: a partial segment cannot be written before the stream ends."""
        self._sink.flush()

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._plaintext_size

    def _finish(self) -> None:
        self._emit(last=True)
        self.closed = True

    def _emit(self, last: bool) -> None:
        nonce = _nonce(self._header, self._counter, last)
        self._sink.write(self._cipher.encrypt(nonce, bytes(self._buffer), self._header.raw))
        self._buffer.clear()
        self._counter += 1


@contextmanager
def encrypting_writer(
    sink: BinaryIO, keys: KeySource, *, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[EncryptingWriter]:
    """Encrypt what is written to the yielded object into ``sink`` with a new key from ``keys``.

    A key ring encrypts with its primary key; ``KmsKeySource`` with a fresh data key wrapped by KMS.

    On a clean exit the last segment is written; on an exception nothing more is written, so the partial
    output can never be mistaken for a complete file (it reads as truncated).
    """
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes")
    writer = EncryptingWriter(sink, keys, segment_size)
    yield writer
    writer._finish()


def read_key_id(source: BinaryIO) -> str:
    """The id of the key that encrypted ``source`` (read from its header, which is not yet authenticated)."""
    return _read_header(source).key_id


def decrypt_stream(source: BinaryIO, keys: KeySource) -> Iterator[bytes]:
    """Yield the plaintext of ``source`` segment by segment, each only after its tag is verified.

    Raises ``DecryptionError`` at the first problem. Segments already yielded are authentic, but the file
    as a whole is only proven complete when the iteration ends without error: a consumer writing the
    plaintext somewhere must discard it on error.
    """
    header = _read_header(source)
    try:
        key = keys.data_key(header.key_id, header.wrapped_key)
    except (UnknownKeyIdError, DataKeyError) as error:
        raise DecryptionError(str(error)) from None
    cipher = _segment_cipher(key, header)
    chunk_size = header.segment_size + TAG_SIZE

    counter = 0
    current = _read_up_to(source, chunk_size)
    if not current:
        raise DecryptionError("file is truncated: it ends right after its header")
    while True:
        # One segment of look-ahead tells whether the current one must be the last.
        following = _read_up_to(source, chunk_size) if len(current) == chunk_size else b""
        if following:
            yield _open_middle_segment(cipher, header, counter, current)
        else:
            yield _open_last_segment(cipher, header, counter, current)
            return
        current = following
        counter += 1


def _open_middle_segment(cipher: AESGCM, header: _Header, counter: int, segment: bytes) -> bytes:
    try:
        return cipher.decrypt(_nonce(header, counter, last=False), segment, header.raw)
    except InvalidTag:
        pass
    # Only to name the problem precisely: a genuine last segment followed by more bytes.
    if _is_authentic(cipher, header, counter, segment, last=True):
        raise DecryptionError(f"unexpected data after the last segment ({counter}): bytes were appended")
    raise DecryptionError(_altered(counter))


def _open_last_segment(cipher: AESGCM, header: _Header, counter: int, segment: bytes) -> bytes:
    if len(segment) < TAG_SIZE:
        raise DecryptionError(f"file is truncated inside segment {counter}")
    try:
        return cipher.decrypt(_nonce(header, counter, last=True), segment, header.raw)
    except InvalidTag:
        pass
    # Only to name the problem precisely: a genuine middle segment means the file was cut after it.
    if len(segment) == header.segment_size + TAG_SIZE and _is_authentic(
        cipher, header, counter, segment, last=False
    ):
        raise DecryptionError(f"file is truncated: it ends after segment {counter}, before its last segment")
    # A shorter segment that fails may also be one cut short: the two cannot be told apart.
    raise DecryptionError(_altered(counter) + " (or the file is truncated inside this segment)")


def _is_authentic(cipher: AESGCM, header: _Header, counter: int, segment: bytes, last: bool) -> bool:
    try:
        cipher.decrypt(_nonce(header, counter, last), segment, header.raw)
    except InvalidTag:
        return False
    return True


def _altered(counter: int) -> str:
    return f"authentication failed at segment {counter}: the file was altered or the key is wrong"


def _read_header(source: BinaryIO) -> _Header:
    fixed = _read_up_to(source, _FIXED.size)
    if not MAGIC.startswith(fixed[: len(MAGIC)]):
        raise DecryptionError("not an encrypted ESG file (it does not start with the ESGENC1 marker)")
    if len(fixed) < _FIXED.size:
        raise DecryptionError(
            "file is truncated inside its header" if fixed else "file is truncated: it is empty"
        )
    _, version, segment_size, id_length = _FIXED.unpack(fixed)
    if version not in _VERSIONS:
        raise DecryptionError(
            f"unsupported encrypted file version {version} (this program reads versions 1 and 2)"
        )
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise DecryptionError(f"corrupt header: segment size {segment_size} is out of range")
    encoded_id = _read_header_part(source, id_length)
    try:
        key_id = encoded_id.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("corrupt header: the key id is not ASCII") from None
    wrapped_field = b""
    if version == ENVELOPE_FORMAT_VERSION:
        length_field = _read_header_part(source, _WRAPPED_LENGTH.size)
        (wrapped_length,) = _WRAPPED_LENGTH.unpack(length_field)
        if wrapped_length == 0:
            raise DecryptionError("corrupt header: the wrapped data key is empty")
        wrapped_field = length_field + _read_header_part(source, wrapped_length)
    tail = _read_header_part(source, SALT_SIZE + NONCE_PREFIX_SIZE)
    salt, nonce_prefix = tail[:SALT_SIZE], tail[SALT_SIZE:]
    raw = fixed + encoded_id + wrapped_field + tail
    return _Header(segment_size, key_id, wrapped_field[_WRAPPED_LENGTH.size :], salt, nonce_prefix, raw)


def _read_header_part(source: BinaryIO, size: int) -> bytes:
    part = _read_up_to(source, size)
    if len(part) < size:
        raise DecryptionError("file is truncated inside its header")
    return part


def _read_up_to(source: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end of the stream (pipes and sockets return short reads)."""
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining:
        part = source.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


class _DecryptedRaw(io.RawIOBase):
    """A read-only raw stream over ``decrypt_stream``'s authenticated segments."""

    def __init__(self, segments: Iterator[bytes]):
        self._segments = segments
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            segment = next(self._segments, None)
            if segment is None:
                return 0
            self._pending = memoryview(segment)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def decrypting_reader(source: BinaryIO, keys: KeySource) -> io.BufferedReader:
    """The plaintext of ``source`` as a binary file object; reading raises ``DecryptionError`` as decrypt does."""
    return io.BufferedReader(_DecryptedRaw(decrypt_stream(source, keys)), buffer_size=64 * 1024)
