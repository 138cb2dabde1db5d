"""AWS KMS keyrings against moto's server on loopback: the first key encrypts and any listed key decrypts,
aliases become ARNs, the key file still reads the files it made, every KMS call carries the file's encryption
context, and no data key reaches a log, a repr or a run's metadata."""

import base64
import io
import logging
import os
from datetime import date

import boto3
import pytest
from botocore.config import Config
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.settings import MissingSettingError
from esg_assets.lib.crypto.keyring import KeyringError, key_file_keyring, kms_keyring
from esg_assets.lib.crypto.keys import KeyRing, generate_key_file, load_key_ring
from esg_assets.lib.crypto.kms import KmsResource
from esg_assets.lib.crypto.messages import DecryptionError, FileIdentity, decrypt_bytes, encrypt_bytes
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.report_store.store import report_store_for
from esg_assets.lib.report_store.verification import committed_manifest
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.aws_loopback import REGION
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY, materialized

PLAINTEXT = b"Account ID,Account Name\r\n" + b"A-1,Harbor Pension Trust\r\n" * 5000  # two frames and a bit
IDENTITY = FileIdentity("FirmESGRatings_20261120.csv", date(2026, 11, 20), "ratings", 1, "run-1")


@pytest.fixture
def kms(aws):
    return aws.client("kms")


def header(ciphertext: bytes):
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

    return deserialize_header(io.BytesIO(ciphertext))[0]


def wrapped_key(ciphertext: bytes):
    """The message's one encrypted data key: which KMS key wrapped it, and the KMS ciphertext."""
    (data_key,) = header(ciphertext).encrypted_data_keys
    return data_key


def data_key_of(kms, ciphertext: bytes) -> bytes:
    """The plaintext data key of a message, as KMS unwraps it given the message's encryption context."""
    context = header(ciphertext).encryption_context
    return kms.decrypt(CiphertextBlob=wrapped_key(ciphertext).encrypted_data_key, EncryptionContext=context)[
        "Plaintext"
    ]


def decryption_error(ciphertext: bytes, keyring) -> str:
    with pytest.raises(DecryptionError) as caught:
        decrypt_bytes(ciphertext, keyring, IDENTITY)
    return str(caught.value)


@pytest.mark.integration
def test_the_first_key_encrypts_and_any_listed_key_decrypts(aws, kms):
    first, second = aws.new_kms_key(), aws.new_kms_key()
    keyring = kms_keyring(kms, [first["KeyId"], second["KeyId"]])
    assert keyring.primary_key_id == first["Arn"]
    made_by_first = encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
    made_by_second = encrypt_bytes(PLAINTEXT, kms_keyring(kms, [second["KeyId"]]), IDENTITY)
    data_key = wrapped_key(made_by_first)
    assert data_key.key_provider.provider_id == "aws-kms"
    assert data_key.key_provider.key_info == first["Arn"].encode()
    assert wrapped_key(made_by_second).key_provider.key_info == second["Arn"].encode()
    assert decrypt_bytes(made_by_first, keyring, IDENTITY) == PLAINTEXT
    assert decrypt_bytes(made_by_second, keyring, IDENTITY) == PLAINTEXT


@pytest.mark.integration
def test_each_file_gets_its_own_data_key(aws, kms):
    keyring = kms_keyring(kms, [aws.new_kms_key()["KeyId"]])
    one, two = encrypt_bytes(PLAINTEXT, keyring, IDENTITY), encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
    assert wrapped_key(one).encrypted_data_key != wrapped_key(two).encrypted_data_key
    assert data_key_of(kms, one) != data_key_of(kms, two)


@pytest.mark.integration
@pytest.mark.parametrize("form", ["alias", "alias-arn", "key-id", "arn"])
def test_every_form_of_key_id_resolves_to_the_keys_arn(aws, kms, form):
    key = aws.new_kms_key()
    alias = f"alias/esg-reports-{key['KeyId'][:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    key_id = {
        "alias": alias,
        "alias-arn": f"arn:aws:kms:{REGION}:{key['Arn'].split(':')[4]}:{alias}",
        "key-id": key["KeyId"],
        "arn": key["Arn"],
    }[form]
    keyring = kms_keyring(kms, [key_id])
    assert keyring.primary_key_id == key["Arn"]
    assert key["Arn"] in repr(keyring)
    # The header names the ARN, whatever form the setting used: that is what data keys are matched by.
    assert wrapped_key(encrypt_bytes(b"data", keyring, IDENTITY)).key_provider.key_info == key["Arn"].encode()


@pytest.mark.integration
def test_rotating_the_alias_keeps_files_of_the_old_key_readable(aws, kms):
    old, new = aws.new_kms_key(), aws.new_kms_key()
    kms.create_alias(AliasName="alias/esg-reports-test-rotation", TargetKeyId=old["KeyId"])
    old_file = encrypt_bytes(PLAINTEXT, kms_keyring(kms, ["alias/esg-reports-test-rotation"]), IDENTITY)
    kms.update_alias(AliasName="alias/esg-reports-test-rotation", TargetKeyId=new["KeyId"])
    rotated = kms_keyring(kms, ["alias/esg-reports-test-rotation", old["Arn"]])
    new_file = encrypt_bytes(PLAINTEXT, rotated, IDENTITY)
    assert wrapped_key(old_file).key_provider.key_info == old["Arn"].encode()
    assert wrapped_key(new_file).key_provider.key_info == new["Arn"].encode()
    assert decrypt_bytes(old_file, rotated, IDENTITY) == PLAINTEXT
    assert decrypt_bytes(new_file, rotated, IDENTITY) == PLAINTEXT
    # Without the old key listed, its files are refused, even though KMS itself would decrypt them.
    message = decryption_error(old_file, kms_keyring(kms, ["alias/esg-reports-test-rotation"]))
    assert message.startswith("none of the configured keys can decrypt it") and new["Arn"] in message


@pytest.mark.integration
def test_a_file_made_under_a_kms_key_not_in_the_list_is_refused(aws, kms):
    # Someone who controls another KMS key the reader may use could otherwise pass off a file of their own.
    ours, theirs = aws.new_kms_key(), aws.new_kms_key()
    forged = encrypt_bytes(PLAINTEXT, kms_keyring(kms, [theirs["KeyId"]]), IDENTITY)
    message = decryption_error(forged, kms_keyring(kms, [ours["KeyId"]]))
    assert message.startswith("none of the configured keys can decrypt it") and ours["Arn"] in message
    assert message.endswith("it was encrypted for other keys")


@pytest.mark.integration
def test_the_fallback_key_file_still_decrypts_the_files_it_made(aws, kms, tmp_path):
    generate_key_file(tmp_path / "esg.key")
    ring = load_key_ring(tmp_path / "esg.key")
    before = encrypt_bytes(PLAINTEXT, key_file_keyring(ring), IDENTITY)
    key = aws.new_kms_key()
    moved = kms_keyring(kms, [key["KeyId"]], fallback=ring)
    assert moved.primary_key_id == key["Arn"]  # new files: KMS, not the key file
    assert wrapped_key(encrypt_bytes(b"after", moved, IDENTITY)).key_provider.provider_id == "aws-kms"
    assert decrypt_bytes(before, moved, IDENTITY) == PLAINTEXT
    assert "none of the configured keys" in decryption_error(before, kms_keyring(kms, [key["KeyId"]]))


@pytest.mark.integration
def test_a_kms_file_read_with_only_the_key_file_is_refused(aws, kms):
    ciphertext = encrypt_bytes(PLAINTEXT, kms_keyring(kms, [aws.new_kms_key()["KeyId"]]), IDENTITY)
    ring = key_file_keyring(KeyRing({"k-1": os.urandom(32)}, "k-1"))
    assert "none of the configured keys" in decryption_error(ciphertext, ring)


@pytest.mark.integration
def test_an_unknown_alias_raises_keyring_error_naming_it(aws, kms):
    known = aws.new_kms_key()
    with pytest.raises(KeyringError, match="^AWS KMS cannot look up key alias/nope: NotFoundException$"):
        kms_keyring(kms, [known["KeyId"], "alias/nope"])
    with pytest.raises(KeyringError, match="at least one KMS key id is needed"):
        kms_keyring(kms, [])


@pytest.mark.unit
def test_an_unreachable_kms_is_a_keyring_error_naming_the_key():
    client = boto3.client(
        "kms", endpoint_url="http://127.0.0.1:9", region_name=REGION,
        aws_access_key_id="x", aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )  # fmt: skip
    with pytest.raises(KeyringError, match="AWS KMS cannot look up key k: EndpointConnectionError"):
        kms_keyring(client, ["k"])


@pytest.mark.integration
def test_a_tampered_wrapped_data_key_is_refused(aws, kms):
    keyring = kms_keyring(kms, [aws.new_kms_key()["KeyId"]])
    ciphertext = encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
    wrapped = wrapped_key(ciphertext).encrypted_data_key
    altered = bytearray(wrapped)
    altered[len(altered) // 2] ^= 0x01
    tampered = ciphertext.replace(wrapped, bytes(altered))
    assert "none of the configured keys" in decryption_error(tampered, keyring)


@pytest.mark.integration
def test_kms_refuses_the_data_key_under_any_other_encryption_context(aws, kms):
    key = aws.new_kms_key()
    ciphertext = encrypt_bytes(PLAINTEXT, kms_keyring(kms, [key["KeyId"]]), IDENTITY)
    context = header(ciphertext).encryption_context
    blob = wrapped_key(ciphertext).encrypted_data_key
    for other in [
        {**context, "partition_day": "2026-11-21"},
        {**context, "kind": "errors"},
        {key: value for key, value in context.items() if key != "run_id"},
        {key: value for key, value in context.items() if not key.startswith("aws-crypto-")},
        {},
    ]:
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=other)
    # The whole context of the file (its identity and the signature's public key) unwraps it.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["KeyId"] == key["Arn"]
    assert len(data_key_of(kms, ciphertext)) == 32


@pytest.mark.integration
def test_every_kms_call_carries_the_files_encryption_context(aws, kms):
    sent = []

    def record(params, **kwargs):
        operation = kwargs["event_name"].rsplit(".", 1)[1]
        sent.append((operation, params.get("KeyId"), params.get("EncryptionContext")))

    kms.meta.events.register("provide-client-params.kms.GenerateDataKey", record)
    kms.meta.events.register("provide-client-params.kms.Decrypt", record)
    key = aws.new_kms_key()
    keyring = kms_keyring(kms, [key["KeyId"]])
    ciphertext = encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
    assert decrypt_bytes(ciphertext, keyring, IDENTITY) == PLAINTEXT
    context = header(ciphertext).encryption_context
    assert IDENTITY.context().items() <= context.items()
    assert sent == [("GenerateDataKey", key["Arn"], context), ("Decrypt", key["Arn"], context)]


@pytest.mark.integration
def test_the_resource_picks_kms_when_a_kms_key_is_set_and_the_key_file_otherwise(aws, tmp_path):
    first, second = aws.new_kms_key(), aws.new_kms_key()
    generate_key_file(tmp_path / "esg.key")
    ring = load_key_ring(tmp_path / "esg.key")
    key_file = str(tmp_path / "esg.key")
    kms_resource = ReportStoreResource(
        output_uri=str(tmp_path), kms_key_id=f" {first['KeyId']}, {second['Arn']} ",
        kms=KmsResource(endpoint_url=aws.endpoint), encryption_key_file=key_file,
    )  # fmt: skip
    keyring = kms_resource.keyring()
    assert keyring.primary_key_id == first["Arn"]
    assert repr(keyring) == f"Keyring(AWS KMS keys {first['Arn']}, {second['Arn']}, key file {key_file})"
    new_file = encrypt_bytes(b"new", keyring, IDENTITY)
    assert wrapped_key(new_file).key_provider.key_info == first["Arn"].encode()
    older = encrypt_bytes(b"older", key_file_keyring(ring), IDENTITY)
    assert decrypt_bytes(older, keyring, IDENTITY) == b"older"  # the key file reads the files it made
    only_kms = ReportStoreResource(
        output_uri=str(tmp_path), kms_key_id=first["KeyId"], kms=KmsResource(endpoint_url=aws.endpoint)
    )
    assert only_kms.keyring().primary_key_id == first["Arn"]
    file_resource = ReportStoreResource(output_uri=str(tmp_path), encryption_key_file=key_file)
    file_keyring = file_resource.keyring()
    assert file_keyring.primary_key_id == ring.primary_id
    assert wrapped_key(encrypt_bytes(b"x", file_keyring, IDENTITY)).key_provider.provider_id == "esg-ratings"
    with pytest.raises(MissingSettingError, match="ESG_ENCRYPTION_KEY_FILE"):
        ReportStoreResource(output_uri=str(tmp_path)).keyring()
    unknown = ReportStoreResource(
        output_uri=str(tmp_path), kms_key_id="alias/nope", kms=KmsResource(endpoint_url=aws.endpoint)
    )
    with pytest.raises(KeyringError, match="alias/nope"):
        unknown.keyring()


@pytest.mark.integration
def test_key_material_stays_out_of_reprs_and_messages(aws, kms):
    key_bytes = os.urandom(32)
    file_keyring = key_file_keyring(KeyRing({"k-1": key_bytes}, "k-1"))
    keyring = kms_keyring(kms, [aws.new_kms_key()["KeyId"]], fallback=KeyRing({"k-1": key_bytes}, "k-1"))
    ciphertext = encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
    data_key = data_key_of(kms, ciphertext)
    message = decryption_error(ciphertext[:-10], keyring)
    visible = "".join(map(repr, [file_keyring, keyring, keyring.decrypting, keyring.encrypting])) + message
    for form in _forms(key_bytes) + _forms(data_key):
        assert form not in visible


@pytest.mark.integration
def test_debug_logging_never_shows_a_data_key(aws, kms, caplog):
    keyring = kms_keyring(kms, [aws.new_kms_key()["KeyId"]])
    with caplog.at_level(logging.DEBUG):  # everything, botocore's wire logging and the SDK's included
        ciphertext = encrypt_bytes(PLAINTEXT, keyring, IDENTITY)
        assert decrypt_bytes(ciphertext, keyring, IDENTITY) == PLAINTEXT
    logged = caplog.text
    assert "botocore" in logged and "aws_encryption_sdk" in logged  # both did log at DEBUG
    for form in _forms(data_key_of(kms, ciphertext)):
        assert form not in logged


@pytest.mark.e2e
def test_a_run_with_kms_publishes_kms_files_and_no_data_key_reaches_logs_or_metadata(
    aws, kms, job_environment, monkeypatch, caplog
):
    key = aws.new_kms_key()
    with SandboxServer(SandboxConfig(accounts=60, seed=3, failure_rate=0.1)) as sandbox:
        paths = job_environment(sandbox)
        monkeypatch.delenv("ESG_ENCRYPTION_KEY_FILE")  # not required once KMS encrypts
        monkeypatch.setenv("ESG_KMS_KEY_ID", key["KeyId"])
        monkeypatch.setenv("ESG_KMS_ENDPOINT_URL", aws.endpoint)
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                ALL_ASSETS, partition_key=DAY.isoformat(), resources=dagster_resources(), instance=instance
            )
            assert result.success
            events = "\n".join(repr(record) for record in instance.all_logs(result.run_id))
    keyring = kms_keyring(kms, [key["KeyId"]])
    store = report_store_for(f"file://{paths['output']}")
    manifest = committed_manifest(store, keyring, DAY)  # its seal: a KMS message too
    assert manifest.key_id == key["Arn"]
    encrypted = [entry for entry in manifest.files if entry.encrypted]
    assert sorted(entry.kind for entry in encrypted) == ["errors", "ratings"]
    data_keys = [data_key_of(kms, base64.b64decode(manifest.seal))]
    for entry in encrypted:
        ciphertext = (paths["output"] / entry.path).read_bytes()
        assert entry.key_id == key["Arn"] == wrapped_key(ciphertext).key_provider.key_info.decode()
        assert decrypt_bytes(ciphertext, keyring, manifest.file_identity(entry))
        data_keys.append(data_key_of(kms, ciphertext))
    assert len(set(data_keys)) == 3
    metadata = materialized(result, "ratings_file")
    assert metadata["key_id"].value == key["Arn"]
    visible = events + caplog.text + repr(metadata)
    for data_key in data_keys:
        for form in _forms(data_key):
            assert form not in visible


def _forms(secret: bytes) -> list[str]:
    """The ways a key could be printed."""
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]
