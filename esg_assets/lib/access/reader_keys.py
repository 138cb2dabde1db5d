"""The readers' own keys: each authorized reader's RSA public key, to which every new file is also encrypted.

The list is a JSON file (``ESG_READERS_FILE``) that only its owner, root or the service account, can change:
the job refuses a file that anyone else could have written. A reader decrypts with their private key alone,
with ``esg-report`` or any AWS Encryption SDK; a reader removed from the list gets no key in the files
published after the removal, so their private key opens none of them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from esg_assets.core.atomic_files import atomic_file

READERS_FORMAT = "esg-readers"
READERS_VERSION = 1
# The raw RSA keyring's key namespace (the SDK's provider id); the key name is the reader's name.
READER_KEY_NAMESPACE = "esg-readers"
MIN_RSA_BITS = 3072
# The service's key and the readers' share the SDK's limit on data keys per file (crypto/messages.py).
MAX_READERS = 60
_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}")


class ReadersFileError(Exception):
    """The readers file is missing, malformed or unsafe, or a change to it refused; the message says why."""


@dataclass(frozen=True)
class Reader:
    """One reader: a name (the OS or directory user), their RSA public key (PEM) and when it was added."""

    name: str
    public_key: str
    fingerprint: str  # SHA-256 of the key's DER SubjectPublicKeyInfo, to compare with what the reader holds
    added_at: str

    def master_key(self) -> RawMasterKey:
        """The reader's key as the SDK's raw RSA master key: new files get a data key only they can unwrap."""
        return RawMasterKey(
            key_id=self.name.encode("ascii"),
            provider_id=READER_KEY_NAMESPACE,
            wrapping_key=WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
                wrapping_key=self.public_key.encode("ascii"),
                wrapping_key_type=EncryptionKeyType.PUBLIC,
            ),
        )


def new_reader(name: str, public_key_pem: bytes, now: datetime | None = None) -> Reader:
    """A reader from their name and public key, refused (``ReadersFileError``) unless both are sound."""
    if not _NAME.fullmatch(name):
        raise ReadersFileError(
            f"reader name {name!r}: use 1-64 of A-Z a-z 0-9 . _ @ - (an OS or directory user)"
        )
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        raise ReadersFileError(f"the public key of {name} is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ReadersFileError(f"the public key of {name} is not an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise ReadersFileError(
            f"the public key of {name} has {key.key_size} bits; at least {MIN_RSA_BITS} are needed"
        )
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Reader(
        name=name,
        public_key=pem.decode("ascii"),
        fingerprint=hashlib.sha256(der).hexdigest(),
        added_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
    )


def load_readers(path: str | os.PathLike[str]) -> list[Reader]:
    """The readers of the file at ``path``; ``ReadersFileError`` when it is missing, unsafe or malformed."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ReadersFileError(
            f"readers file {path} does not exist (add a reader: esg-report readers add)"
        ) from None
    except OSError as error:
        raise ReadersFileError(f"readers file {path} cannot be opened: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        _check_safe(path, os.fstat(file.fileno()))  # on the descriptor: the file checked is the file read
        raw = file.read()
    try:
        document = json.loads(raw)
        if document.get("format") != READERS_FORMAT or document.get("version") != READERS_VERSION:
            raise ValueError(f"not an {READERS_FORMAT} version {READERS_VERSION} file")
        readers = [Reader(**entry) for entry in document["readers"]]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ReadersFileError(f"readers file {path} is malformed: {error}") from None
    for reader in readers:  # a key edited in by hand is checked as one added by the command
        checked = new_reader(reader.name, reader.public_key.encode("ascii"))
        if checked.fingerprint != reader.fingerprint:
            raise ReadersFileError(
                f"readers file {path}: the key of {reader.name} does not match its fingerprint"
            )
    if len({reader.name for reader in readers}) != len(readers):
        raise ReadersFileError(f"readers file {path} names a reader twice")
    return readers


def save_readers(path: str | os.PathLike[str], readers: list[Reader]) -> None:
    """Write the list (mode 0644: public keys only; owner root or the service), replacing it atomically."""
    if len(readers) > MAX_READERS:
        raise ReadersFileError(f"at most {MAX_READERS} readers: every file carries a data key for each")
    document = {"format": READERS_FORMAT, "version": READERS_VERSION, "readers": [asdict(r) for r in readers]}
    path = Path(path)
    with atomic_file(path) as file:
        file.write((json.dumps(document, indent=2) + "\n").encode("utf-8"))
    os.chmod(path, 0o644)


@contextmanager
def readers_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """One change to the list at a time: exclusive ``flock`` on ``<path>.lock``, held from read to write."""
    lock = Path(f"{path}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_safe(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ReadersFileError(f"readers file {path} is not a regular file")
    if info.st_uid not in (0, os.getuid()):
        raise ReadersFileError(
            f"readers file {path} is owned by uid {info.st_uid}: only root or this service account "
            f"({os.getuid()}) may own the list of who can read the files"
        )
    if info.st_mode & 0o022:
        raise ReadersFileError(
            f"readers file {path} can be written by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"refusing it: run chmod 644 {path}"
        )
