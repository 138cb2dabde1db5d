"""AWS KMS envelope encryption: a fresh data key per file, wrapped by a KMS key, kept in the file's header."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esg_assets.crypto.data_keys import DataKey, DataKeyError
from esg_assets.crypto.keys import KeyRing


# botocore logs every response body at DEBUG, and the body of GenerateDataKey and Decrypt is the plaintext data
# key: pinning that logger's level keeps a DEBUG logging configuration from ever writing a key into a log.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)


class KmsKeySource:
    """``KeySource`` over AWS KMS keys: the first of ``key_ids`` wraps new files' keys, every one unwraps.

    Only files whose header names one of ``key_ids`` are unwrapped: a header pointing at some other KMS key
    that the caller happens to be allowed to use (another account's, say) would otherwise let whoever owns
    that key forge a file that decrypts cleanly. ``fallback`` is the key file of files made before the move
    to KMS. Error messages carry KMS error codes and key ids, never key material.
    """

    def __init__(self, client: Any, key_ids: Sequence[str], fallback: KeyRing | None = None):
        if not key_ids:
            raise ValueError("at least one KMS key id is needed")
        self._client = client
        self._key_ids = tuple(key_ids)
        self._fallback = fallback
        self._arns: frozenset[str] | None = None  # the ARNs of key_ids, resolved on first use

    def __repr__(self) -> str:
        return f"KmsKeySource(key_ids={list(self._key_ids)!r}, fallback={self._fallback!r})"

    def new_data_key(self) -> DataKey:
        primary = self._key_ids[0]
        response = _call(self._client.generate_data_key, "generate a data key with", primary,
                         KeyId=primary, KeySpec="AES_256")  # fmt: skip
        # The response names the key by its ARN, whatever form the setting used: that goes into the header.
        return DataKey(response["KeyId"], response["Plaintext"], response["CiphertextBlob"])

    def data_key(self, key_id: str, wrapped_key: bytes) -> bytes:
        if not wrapped_key:
            if self._fallback is None:
                raise DataKeyError(
                    f"the file was encrypted with key {key_id} of a key file, not with AWS KMS; set "
                    "ESG_ENCRYPTION_KEY_FILE to the key file that holds it"
                )
            return self._fallback.key(key_id)
        if key_id not in self._trusted_arns():
            raise DataKeyError(
                f"the file names AWS KMS key {key_id}, which is not one of the configured keys "
                f"({', '.join(self._key_ids)}); refusing to unwrap its data key"
            )
        response = _call(self._client.decrypt, "unwrap the file's data key with", key_id,
                         CiphertextBlob=wrapped_key, KeyId=key_id)  # fmt: skip
        return response["Plaintext"]

    def _trusted_arns(self) -> frozenset[str]:
        # Headers name keys by ARN; the setting may use an id or an alias: KMS says which ARN each one is.
        if self._arns is None:
            self._arns = frozenset(
                _call(self._client.describe_key, "look up", key_id, KeyId=key_id)["KeyMetadata"]["Arn"]
                for key_id in self._key_ids
            )
        return self._arns


def _call(operation: Callable[..., dict], doing: str, key_id: str, **parameters) -> dict:
    try:
        return operation(**parameters)
    except ClientError as error:
        # Only the error code: the message and the parameters stay out (a wrapped key is a parameter).
        code = error.response.get("Error", {}).get("Code", "error")
        raise DataKeyError(f"AWS KMS could not {doing} key {key_id}: {code}") from None
    except BotoCoreError as error:  # no answer: endpoint, credentials, network
        raise DataKeyError(
            f"AWS KMS could not {doing} key {key_id}: {type(error).__name__}: {error}"
        ) from None
