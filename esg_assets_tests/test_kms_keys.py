"""AWS KMS envelope encryption against moto's server on loopback: a data key per file, wrapped in the header,
rotation and the move from a key file, refusals that name the problem, and no key material anywhere."""

import base64
import io
import logging
import os

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.crypto.data_keys import DataKey, DataKeyError
from esg_assets.crypto.keys import KeyRing, generate_key_file, load_key_ring
from esg_assets.crypto.kms import KmsKeySource
from esg_assets.crypto.stream_cipher import (
    ENVELOPE_FORMAT_VERSION,
    FORMAT_VERSION,
    DecryptionError,
    _read_header,
    decrypt_stream,
    encrypting_writer,
)
from esg_assets.resources.from_env import resources_from_env
from esg_assets.resources.report_store import ReportStoreResource
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets.settings import MissingSettingError
from esg_assets_tests.aws_loopback import aws, moto_endpoint  # noqa: F401 (fixtures)
from esg_assets_tests.pipeline_runs import ALL_ASSETS, DAY

PLAINTEXT = b"Account ID,Account Name\r\n" + b"A-1,Harbor Pension Trust\r\n" * 5000


def encrypt(plaintext: bytes, keys) -> bytes:
    sink = io.BytesIO()
    with encrypting_writer(sink, keys, segment_size=4096) as writer:
        writer.write(plaintext)
    return sink.getvalue()


def decrypt(ciphertext: bytes, keys) -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(ciphertext), keys))


def header(ciphertext: bytes):
    return _read_header(io.BytesIO(ciphertext))


@pytest.fixture
def kms(aws):
    return aws.client("kms")


def test_each_file_gets_its_own_data_key_wrapped_in_its_header(aws, kms):
    key = aws.new_kms_key()
    keys = KmsKeySource(kms, [key["KeyId"]])
    first, second = encrypt(PLAINTEXT, keys), encrypt(PLAINTEXT, keys)
    assert decrypt(first, keys) == decrypt(second, keys) == PLAINTEXT
    one, two = header(first), header(second)
    assert first[8] == second[8] == ENVELOPE_FORMAT_VERSION
    assert one.key_id == two.key_id == key["Arn"]  # the ARN, whatever form the setting used
    assert one.wrapped_key != two.wrapped_key
    assert (
        kms.decrypt(CiphertextBlob=one.wrapped_key)["Plaintext"]
        != kms.decrypt(CiphertextBlob=two.wrapped_key)["Plaintext"]
    )


def test_an_alias_names_the_key_and_rotation_keeps_older_files_readable(aws, kms):
    old, new = aws.new_kms_key(), aws.new_kms_key()
    kms.create_alias(AliasName="alias/esg-reports-test-rotation", TargetKeyId=new["KeyId"])
    old_file = encrypt(PLAINTEXT, KmsKeySource(kms, [old["KeyId"]]))
    rotated = KmsKeySource(kms, ["alias/esg-reports-test-rotation", old["Arn"]])
    new_file = encrypt(PLAINTEXT, rotated)
    assert header(new_file).key_id == new["Arn"]
    assert decrypt(old_file, rotated) == decrypt(new_file, rotated) == PLAINTEXT


def test_files_of_the_key_file_still_decrypt_after_the_move_to_kms(aws, kms, tmp_path):
    generate_key_file(tmp_path / "esg.key")
    ring = load_key_ring(tmp_path / "esg.key")
    before = encrypt(PLAINTEXT, ring)
    assert before[8] == FORMAT_VERSION  # key file files keep the first layout
    key = aws.new_kms_key()
    assert decrypt(before, KmsKeySource(kms, [key["KeyId"]], fallback=ring)) == PLAINTEXT
    with pytest.raises(DecryptionError, match="set ESG_ENCRYPTION_KEY_FILE to the key file that holds it"):
        decrypt(before, KmsKeySource(kms, [key["KeyId"]]))


def test_a_kms_file_read_with_only_a_key_file_says_which_setting_is_missing(aws, kms, tmp_path):
    key = aws.new_kms_key()
    ciphertext = encrypt(PLAINTEXT, KmsKeySource(kms, [key["KeyId"]]))
    ring = KeyRing({"k-1": os.urandom(32)}, "k-1")
    with pytest.raises(DecryptionError, match=f"encrypted with AWS KMS key {key['Arn']}.*set ESG_KMS_KEY_ID"):
        decrypt(ciphertext, ring)


def test_a_header_naming_a_key_that_is_not_configured_is_refused(aws, kms):
    # Someone who controls another KMS key the reader may use could otherwise forge a file that decrypts.
    ours, theirs = aws.new_kms_key(), aws.new_kms_key()
    forged = encrypt(PLAINTEXT, KmsKeySource(kms, [theirs["KeyId"]]))
    with pytest.raises(
        DecryptionError, match=f"names AWS KMS key {theirs['Arn']}, which is not one of the configured"
    ):
        decrypt(forged, KmsKeySource(kms, [ours["KeyId"]]))


def test_a_tampered_wrapped_key_and_an_unknown_key_fail_with_the_kms_error_code(aws, kms):
    key = aws.new_kms_key()
    keys = KmsKeySource(kms, [key["KeyId"]])
    ciphertext = bytearray(encrypt(PLAINTEXT, keys))
    wrapped_at = 8 + 1 + 4 + 1 + len(key["Arn"]) + 2
    ciphertext[wrapped_at + 40] ^= 0x01
    with pytest.raises(
        DecryptionError,
        match="AWS KMS could not unwrap the file's data key with key .*: InvalidCiphertextException",
    ):
        decrypt(bytes(ciphertext), keys)
    with pytest.raises(
        DataKeyError, match="could not generate a data key with key alias/nope: NotFoundException"
    ):
        encrypt(PLAINTEXT, KmsKeySource(kms, ["alias/nope"]))


def test_an_unreachable_kms_is_a_clear_error():
    import boto3

    client = boto3.client(
        "kms", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="y",
    )  # fmt: skip
    client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(
        DataKeyError, match="AWS KMS could not generate a data key with key k: EndpointConnectionError"
    ):
        KmsKeySource(client, ["k"]).new_data_key()


def test_key_material_stays_out_of_reprs_and_messages(aws, kms):
    data_key = KmsKeySource(kms, [aws.new_kms_key()["KeyId"]]).new_data_key()
    for form in _forms(data_key.key) + _forms(data_key.wrapped_key):
        assert form not in repr(data_key)
    assert "key=" not in repr(DataKey("k", b"\x01" * 32))


def test_debug_logging_never_shows_a_data_key(aws, kms, caplog):
    with caplog.at_level(logging.DEBUG):  # everything, botocore's wire logging included
        data_key = KmsKeySource(kms, [aws.new_kms_key()["KeyId"]]).new_data_key()
    assert "botocore" in caplog.text  # botocore did log at DEBUG
    for form in _forms(data_key.key):
        assert form not in caplog.text


def test_resource_picks_kms_when_a_kms_key_is_set_and_the_key_file_otherwise(aws, tmp_path):
    key = aws.new_kms_key()
    generate_key_file(tmp_path / "esg.key")
    kms_resource = ReportStoreResource(
        output_uri=str(tmp_path), kms_key_id=key["KeyId"], kms_endpoint_url=aws.endpoint,
        encryption_key_file=str(tmp_path / "esg.key"),
    )  # fmt: skip
    assert isinstance(kms_resource.key_source(), KmsKeySource)
    file_resource = ReportStoreResource(
        output_uri=str(tmp_path), encryption_key_file=str(tmp_path / "esg.key")
    )
    assert isinstance(file_resource.key_source(), KeyRing)
    with pytest.raises(MissingSettingError, match="ESG_ENCRYPTION_KEY_FILE"):
        ReportStoreResource(output_uri=str(tmp_path)).key_source()


def test_a_run_with_kms_writes_envelope_files_and_no_key_reaches_logs_or_metadata(
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
                ALL_ASSETS, partition_key=DAY.isoformat(), resources=resources_from_env(), instance=instance
            )
            assert result.success
            events = "\n".join(repr(record) for record in instance.all_logs(result.run_id))
    published = sorted(path for path in paths["output"].iterdir() if path.name.endswith(".csv.enc"))
    assert len(published) == 2
    data_keys = []
    for path in published:
        parsed = header(path.read_bytes())
        assert path.read_bytes()[8] == ENVELOPE_FORMAT_VERSION and parsed.key_id == key["Arn"]
        data_keys.append(kms.decrypt(CiphertextBlob=parsed.wrapped_key)["Plaintext"])
    assert data_keys[0] != data_keys[1]
    metadata = result.asset_materializations_for_node("ratings_file")[0].metadata
    assert metadata["key_id"].value == key["Arn"]
    visible = events + caplog.text + repr(metadata)
    for data_key in data_keys:
        for form in _forms(data_key):
            assert form not in visible


def _forms(secret: bytes) -> list[str]:
    """The ways a key could be printed."""
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]
