"""The day's file keys as AWS Encryption SDK master keys: raw AES-256 keys of a key file, or AWS KMS keys."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aws_encryption_sdk.exceptions import InvalidKeyIdError
from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.base import MasterKey, MasterKeyProvider, MasterKeyProviderConfig
from aws_encryption_sdk.key_providers.kms import KMSMasterKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from botocore.exceptions import BotoCoreError, ClientError

from esg_assets.lib.crypto.keys import KeyRing

# The raw AES keyring's key namespace (the SDK's "provider id"); the key name is the key file's key id.
KEY_NAMESPACE = "esg-ratings"

# botocore logs every response body at DEBUG, and the body of GenerateDataKey and Decrypt is the plaintext
# data key: pinning that logger's level keeps a DEBUG logging configuration from ever writing a key into a
# log.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)


class KeyringError(Exception):
    """The configured keys cannot be used (an unknown KMS key, KMS unreachable); the message names the key."""


class _Keys(MasterKeyProvider):
    """A provider holding exactly the master keys it is given, and vending no other on decrypt.

    Decrypting tries only these keys: a file whose data key is wrapped by any other key (another account's
    KMS key, a key file's key that is not ours) does not decrypt.
    """

    provider_id = "esg-keys"
    vend_masterkey_on_decrypt = False
    _config_class = MasterKeyProviderConfig

    def _new_master_key(self, key_id):
        raise InvalidKeyIdError(f"key {key_id!r} is not one of the configured keys")


def _key_set(master_keys: Sequence[MasterKey]) -> _Keys:
    keys = _Keys()
    for master_key in master_keys:
        keys.add_master_key_provider(master_key)
    return keys


@dataclass(frozen=True)
class Keyring:
    """What encrypts new files (``encrypting``: its first key makes the data key, each key gets a copy of it)
    and what decrypts any (``decrypting``).

    ``primary_key_id`` names the key new files are encrypted with, for the manifest and messages.
    """

    encrypting_keys: tuple[MasterKey, ...]
    decrypting_keys: tuple[MasterKey, ...]
    primary_key_id: str
    description: str
    recipients: tuple[str, ...] = ()  # the readers new files are also encrypted to: "name sha256:fingerprint"

    @property
    def encrypting(self) -> MasterKeyProvider:
        return _key_set(self.encrypting_keys)

    @property
    def decrypting(self) -> MasterKeyProvider:
        return _key_set(self.decrypting_keys)

    def also_for(self, keys: Sequence[MasterKey], recipients: Sequence[str], description: str) -> Keyring:
        """This keyring with new files also encrypted to ``keys`` (the readers' own), named ``recipients``."""
        return replace(
            self,
            encrypting_keys=(*self.encrypting_keys, *keys),
            recipients=(*self.recipients, *recipients),
            description=f"{self.description}; also encrypting to {description}",
        )

    def __repr__(self) -> str:
        return f"Keyring({self.description})"


def raw_aes_master_key(key_id: str, key: bytes) -> RawMasterKey:
    """One key of a key file as the SDK's raw AES-256-GCM master key (namespace ``esg-ratings``)."""
    return RawMasterKey(
        key_id=key_id.encode("ascii"),
        provider_id=KEY_NAMESPACE,
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )


def _raw_master_keys(ring: KeyRing) -> list[RawMasterKey]:
    return [raw_aes_master_key(key_id, ring.key(key_id)) for key_id in ring.key_ids]


def key_file_keyring(ring: KeyRing) -> Keyring:
    """New files under the key file's primary key; every key of the file decrypts (rotation)."""
    return Keyring(
        encrypting_keys=(raw_aes_master_key(ring.primary_id, ring.primary_key),),
        decrypting_keys=tuple(_raw_master_keys(ring)),
        primary_key_id=ring.primary_id,
        description=f"key file {ring.source}, keys {', '.join(ring.key_ids)}",
    )


def kms_keyring(client: Any, key_ids: Sequence[str], fallback: KeyRing | None = None) -> Keyring:
    """New files under the first of ``key_ids``; all of them, and ``fallback``'s keys, decrypt.

    Key ids may be ids, ARNs or aliases: KMS says which ARN each is (the SDK matches data keys by ARN).
    Every KMS call carries the file's encryption context, so CloudTrail names the file of each decrypt.
    """
    if not key_ids:
        raise KeyringError("at least one KMS key id is needed")
    arns = [_arn(client, key_id) for key_id in key_ids]
    kms_keys = [KMSMasterKey(key_id=arn, client=client) for arn in arns]
    fallback_keys = _raw_master_keys(fallback) if fallback is not None else []
    return Keyring(
        encrypting_keys=tuple(kms_keys[:1]),
        decrypting_keys=(*kms_keys, *fallback_keys),
        primary_key_id=arns[0],
        description=f"AWS KMS keys {', '.join(arns)}" + (f", key file {fallback.source}" if fallback else ""),
    )


def _arn(client: Any, key_id: str) -> str:
    try:
        return client.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise KeyringError(f"AWS KMS cannot look up key {key_id}: {code}") from None
    except BotoCoreError as error:
        raise KeyringError(f"AWS KMS cannot look up key {key_id}: {type(error).__name__}") from None
