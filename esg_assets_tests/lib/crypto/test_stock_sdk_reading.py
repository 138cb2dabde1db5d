"""A day's published files read by someone who has only the stock AWS Encryption SDK: the manifest (JSON),
the key file (JSON, esg_assets/lib/crypto/keys.py) or the KMS key's ARN, and the message format. No esg_assets
code reads them.

The module is in two parts. Publishing uses the project's own code (imported inside those helpers only), as
the job does. Reading uses aws_encryption_sdk, json and base64 and nothing of esg_assets: one test proves it
by reading in a fresh interpreter where importing esg_assets fails.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import (
    AlgorithmSuite,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

from esg_assets_tests.support.paths import REPO_ROOT

DAY = date(2026, 11, 20)
RUN_ID = "run-stock-sdk-1"
ACCOUNTS = 2000  # about 160 KB of CSV: several 64 KiB frames


# ----------------------------------------------------------------------------------------------------------
# Publishing: the project's code, as the job runs it. Nothing below this part calls these.
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    store_root: Path
    ratings_csv: bytes  # what the project's own reader (live_file) returns for the day's ratings file
    errors_csv: bytes


def publish_with_key_file(tmp_path: Path) -> tuple[Published, Path]:
    """Publish the day's set under a new key file; returns it and the key file's path."""
    from esg_assets.lib.crypto.keyring import key_file_keyring
    from esg_assets.lib.crypto.keys import add_key, generate_key_file, load_key_ring

    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    add_key(key_file)  # rotated once: the file holds two keys, the reader must pick the right one
    return _publish(tmp_path, key_file_keyring(load_key_ring(key_file))), key_file


def new_key_file(path: Path) -> Path:
    """A key file of its own: keys that did not publish the day."""
    from esg_assets.lib.crypto.keys import generate_key_file

    generate_key_file(path)
    return path


def publish_with_kms(tmp_path: Path, kms_client, key_id: str) -> Published:
    from esg_assets.lib.crypto.keyring import kms_keyring

    return _publish(tmp_path, kms_keyring(kms_client, [key_id]))


def _publish(tmp_path: Path, keyring) -> Published:
    from esg_assets.lib.report_store.local import LocalReportStore
    from esg_assets.lib.report_store.manifest import ERRORS_KIND, RATINGS_KIND
    from esg_assets_tests.support.pipeline_runs import live_file
    from esg_assets_tests.support.published_day import publish_day

    store = LocalReportStore(tmp_path / "reports")
    publish_day(store, keyring, tmp_path / "audit", DAY, accounts=ACCOUNTS, run_id=RUN_ID)
    return Published(
        store.root, live_file(store, keyring, DAY, RATINGS_KIND), live_file(store, keyring, DAY, ERRORS_KIND)
    )


# ----------------------------------------------------------------------------------------------------------
# Reading: aws_encryption_sdk, json and base64 only.
# ----------------------------------------------------------------------------------------------------------

STOCK_CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)


class KeyFileKeys(RawMasterKeyProvider):
    """The keys of an esg key file as raw AES-256-GCM keys: key namespace "esg-ratings", key name = key id."""

    provider_id = "esg-ratings"

    def __init__(self, **kwargs):  # noqa: D107 - the SDK's providers are configured in __new__
        self._keys = {}

    def _get_raw_key(self, key_id):
        return WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=self._keys[key_id],
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )


def key_file_provider(key_file: Path) -> KeyFileKeys:
    """Every key of the key file: {"format": "esg-keyring", "primary": id, "keys": [{"id", "key"}, ...]}."""
    document = json.loads(Path(key_file).read_bytes())
    assert document["format"] == "esg-keyring" and document["version"] == 1
    provider = KeyFileKeys()
    for entry in document["keys"]:
        key_id = entry["id"].encode("ascii")
        provider._keys[key_id] = base64.b64decode(entry["key"], validate=True)
        provider.add_master_key(key_id)
    return provider


def manifest_of(store_root: Path, day: date) -> dict:
    return json.loads((Path(store_root) / f"FirmESGRatings_{day:%Y%m%d}.manifest.json").read_bytes())


def read_day_file(store_root: Path, day: date, kind: str, key_provider):
    """The plaintext and the SDK's header of the day's live file of ``kind``, found through the manifest."""
    (entry,) = [entry for entry in manifest_of(store_root, day)["files"] if entry["kind"] == kind]
    ciphertext = (Path(store_root) / entry["path"]).read_bytes()
    plaintext, header = STOCK_CLIENT.decrypt(source=ciphertext, key_provider=key_provider)
    return entry, ciphertext, plaintext, header


def check_manifest_seal(store_root: Path, day: date, key_provider) -> dict:
    """The manifest's seal: an SDK message whose plaintext is the SHA-256 (hex) of the canonical manifest.

    Canonical: the document without "seal", as JSON with sorted keys, "," and ":" separators, ASCII only.
    """
    manifest = manifest_of(store_root, day)
    body = {key: value for key, value in manifest.items() if key != "seal"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    seal = base64.b64decode(manifest["seal"])
    sealed, header = STOCK_CLIENT.decrypt(source=seal, key_provider=key_provider)
    assert sealed == hashlib.sha256(canonical).hexdigest().encode("ascii")
    return dict(header.encryption_context)


def identity(context) -> dict:
    """The encryption context without the SDK's own entry (the signature's public key)."""
    return {key: value for key, value in context.items() if not key.startswith("aws-crypto-")}


def expected_identity(file_name: str, kind: str) -> dict:
    return {
        "file_name": file_name,
        "partition_day": DAY.isoformat(),
        "kind": kind,
        "schema_version": "1",
        "run_id": RUN_ID,
    }


def check_day_read_with_the_stock_sdk(published: Published, key_provider, key_name: bytes, provider_id: str):
    ratings, ciphertext, plaintext, header = read_day_file(published.store_root, DAY, "ratings", key_provider)
    assert plaintext == published.ratings_csv
    assert plaintext.startswith(b"Account ID,Account Name,") and plaintext.count(b"\r\n") == ACCOUNTS + 1
    assert identity(header.encryption_context) == expected_identity("FirmESGRatings_20261120.csv", "ratings")
    assert header.algorithm == AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
    assert header.frame_length == 65536
    (data_key,) = header.encrypted_data_keys
    assert data_key.key_provider.provider_id == provider_id
    assert data_key.key_provider.key_info[: len(key_name)] == key_name
    # The manifest's hashes are of the stored bytes and of the plaintext.
    assert ratings["stored_sha256"] == hashlib.sha256(ciphertext).hexdigest()
    assert ratings["plaintext_sha256"] == hashlib.sha256(plaintext).hexdigest()
    assert ratings["rows"] == ACCOUNTS
    _, _, errors, header = read_day_file(published.store_root, DAY, "errors", key_provider)
    assert errors == published.errors_csv
    errors_identity = expected_identity("FirmESGRatings_20261120_errors.csv", "errors")
    assert identity(header.encryption_context) == errors_identity
    seal_context = check_manifest_seal(published.store_root, DAY, key_provider)
    assert identity(seal_context) == expected_identity("FirmESGRatings_20261120.manifest.json", "manifest")


# ----------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_stock_sdk_reads_a_key_file_day_with_its_identity_in_the_encryption_context(tmp_path):
    published, key_file = publish_with_key_file(tmp_path)
    primary = json.loads(key_file.read_bytes())["primary"]
    check_day_read_with_the_stock_sdk(
        published, key_file_provider(key_file), key_name=primary.encode(), provider_id="esg-ratings"
    )


@pytest.mark.unit
def test_the_stock_sdk_without_the_key_file_cannot_read_the_day(tmp_path):
    published, _ = publish_with_key_file(tmp_path)
    other = new_key_file(tmp_path / "other.key")
    with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
        read_day_file(published.store_root, DAY, "ratings", key_file_provider(other))


@pytest.mark.integration
def test_the_stock_sdk_reads_a_kms_day_through_kms(aws, monkeypatch, tmp_path):
    key = aws.new_kms_key()
    published = publish_with_kms(tmp_path, aws.client("kms"), key["KeyId"])
    # The reader's KMS client: the stock provider's own, pointed at moto as botocore points any client.
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws.endpoint)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key["Arn"]], botocore_session=botocore.session.Session()
    )
    check_day_read_with_the_stock_sdk(
        published, provider, key_name=key["Arn"].encode(), provider_id="aws-kms"
    )


@pytest.mark.integration
def test_the_stock_sdk_with_another_kms_key_cannot_read_a_kms_day(aws, monkeypatch, tmp_path):
    key, other = aws.new_kms_key(), aws.new_kms_key()
    published = publish_with_kms(tmp_path, aws.client("kms"), key["KeyId"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws.endpoint)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[other["Arn"]], botocore_session=botocore.session.Session()
    )
    with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
        read_day_file(published.store_root, DAY, "ratings", provider)


READER = """
import hashlib, json, sys
sys.modules["esg_assets"] = None  # any import of esg_assets, direct or not, now raises ImportError
from esg_assets_tests.lib.crypto.test_stock_sdk_reading import DAY, key_file_provider, read_day_file
_, _, plaintext, header = read_day_file(sys.argv[1], DAY, "ratings", key_file_provider(sys.argv[2]))
assert not [name for name in sys.modules if name.startswith("esg_assets.")]
read = {"sha256": hashlib.sha256(plaintext).hexdigest(), "context": dict(header.encryption_context)}
print(json.dumps(read))
"""


@pytest.mark.integration
def test_the_reading_part_needs_nothing_of_esg_assets(tmp_path):
    published, key_file = publish_with_key_file(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", READER, str(published.store_root), str(key_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["sha256"] == hashlib.sha256(published.ratings_csv).hexdigest()
    assert identity(read["context"]) == expected_identity("FirmESGRatings_20261120.csv", "ratings")
