"""The s3:// report store against moto's server on loopback: multipart streaming, server-side encryption,
SHA-256 checksums, and conditional writes that keep an older run from replacing a newer run's file."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.file_names import manifest_file_name, ratings_file_name, versions_folder
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.locks import LockedError
from esg_assets.lib.report_store.s3 import (
    RUN_ID_METADATA,
    ConcurrentPublicationError,
    Publication,
    S3Options,
    S3ReportStore,
    StalePublicationError,
)
from esg_assets.lib.report_store.store import report_store_for
from esg_assets.lib.report_store.verification import committed_manifest, verify_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY

NAME = "FirmESGRatings_20261125.csv.enc"
PART = 5 * 1024 * 1024  # S3's smallest part
EARLY = Publication("run-early", datetime(2026, 11, 25, 11, 0, tzinfo=UTC))
LATE = Publication("run-late", EARLY.started_at + timedelta(hours=2))


def store(aws, bucket, publication=None, **options) -> S3ReportStore:
    options = S3Options(endpoint_url=aws.endpoint, **options)
    result = report_store_for(f"s3://{bucket}/daily/ratings", options, publication)
    assert isinstance(result, S3ReportStore)
    return result


def publish(target: S3ReportStore, content: bytes, name: str = NAME) -> None:
    with target.publish(name) as sink:
        sink.write(content)


def read(target: S3ReportStore, name: str = NAME) -> bytes:
    with target.open(name) as source:
        return source.read()


@pytest.mark.integration
def test_publish_open_list_delete(aws):
    bucket = aws.new_bucket()
    target = store(aws, bucket)
    assert not target.exists(NAME) and target.list() == []
    publish(target, b"first")
    publish(target, b"second", "FirmESGRatings_20261125.manifest.json")
    assert read(target) == b"first" and target.exists(NAME)
    assert target.list() == ["FirmESGRatings_20261125.csv.enc", "FirmESGRatings_20261125.manifest.json"]
    assert target.list("FirmESGRatings_20261125.c") == [NAME]
    assert target.uri(NAME) == f"s3://{bucket}/daily/ratings/{NAME}"
    target.delete(NAME)
    target.delete(NAME)  # nothing to delete: no error
    assert not target.exists(NAME)
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/daily/ratings/{NAME} does not exist"):
        target.open(NAME)


@pytest.mark.integration
def test_objects_carry_server_side_encryption_a_sha256_checksum_and_the_run(aws):
    bucket, key = aws.new_bucket(), aws.new_kms_key()
    publish(store(aws, bucket, EARLY, sse="aws:kms", sse_kms_key_id=key["Arn"]), b"ciphertext bytes")
    head = aws.client("s3").head_object(Bucket=bucket, Key=f"daily/ratings/{NAME}", ChecksumMode="ENABLED")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key["Arn"]
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"ciphertext bytes").digest()).decode()
    assert head["Metadata"] == {
        RUN_ID_METADATA: "run-early",
        "esg-run-started-at": EARLY.started_at.isoformat(),
    }
    publish(store(aws, bucket, LATE, sse="AES256"), b"again")
    assert (
        aws.client("s3").head_object(Bucket=bucket, Key=f"daily/ratings/{NAME}")["ServerSideEncryption"]
        == "AES256"
    )


@pytest.mark.unit
def test_bad_encryption_settings_are_refused():
    with pytest.raises(ValueError, match="Setting ESG_S3_SSE must be one of aws:kms, AES256, got 'none'"):
        S3Options(sse="none")
    with pytest.raises(
        ValueError, match="Setting ESG_S3_SSE_KMS_KEY_ID must be empty unless ESG_S3_SSE is aws:kms"
    ):
        S3Options(sse="AES256", sse_kms_key_id="k")


@pytest.mark.integration
def test_a_large_file_streams_up_in_parts_holding_one_part_at_a_time(aws):
    bucket = aws.new_bucket()
    client = aws.client("s3")
    events = []
    upload_part = client.upload_part

    def recording_upload_part(**arguments):
        events.append(("part", len(arguments["Body"])))
        return upload_part(**arguments)

    client.upload_part = recording_upload_part
    target = S3ReportStore(client, bucket, "", S3Options(), part_size=PART)
    chunk = bytes(range(256)) * 256  # 64 KiB, as the cipher writes
    content = hashlib.sha256()
    with target.publish(NAME) as sink:
        for _ in range(2 * PART // len(chunk) + 10):
            events.append(("write", len(chunk)))
            sink.write(chunk)
            content.update(chunk)
    # Each full part left as soon as it filled, while writing went on: never more than a part in memory.
    parts = [size for kind, size in events if kind == "part"]
    assert parts == [PART, PART, 10 * len(chunk)]
    first_part = events.index(("part", PART))
    assert sum(size for kind, size in events[:first_part] if kind == "write") == PART
    assert hashlib.sha256(read(target)).hexdigest() == content.hexdigest()
    assert client.head_object(Bucket=bucket, Key=NAME)["ETag"].endswith('-3"')


@pytest.mark.integration
def test_a_failed_publication_leaves_no_object_and_no_pending_upload(aws):
    bucket = aws.new_bucket()
    target = S3ReportStore(aws.client("s3"), bucket, "", S3Options(), part_size=PART)
    with pytest.raises(RuntimeError, match="writer failed"), target.publish(NAME) as sink:
        sink.write(b"x" * (PART + 1))  # one part already sent
        raise RuntimeError("writer failed")
    assert not target.exists(NAME)
    assert aws.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.integration
def test_an_older_run_never_replaces_a_newer_runs_object(aws):
    bucket = aws.new_bucket()
    publish(store(aws, bucket, LATE), b"late run's file")
    with pytest.raises(
        StalePublicationError,
        match="was published by run run-late, which started at .* after this run \\(run-early",
    ):
        publish(store(aws, bucket, EARLY), b"early run's file")
    assert read(store(aws, bucket)) == b"late run's file"
    publish(store(aws, bucket, LATE), b"the late run again")  # the same run may publish again
    assert read(store(aws, bucket)) == b"the late run again"


@pytest.mark.integration
def test_a_newer_run_replaces_an_older_runs_object(aws):
    bucket = aws.new_bucket()
    publish(store(aws, bucket, EARLY), b"early")
    publish(store(aws, bucket, LATE), b"late")
    head = aws.client("s3").head_object(Bucket=bucket, Key=f"daily/ratings/{NAME}")
    assert read(store(aws, bucket)) == b"late" and head["Metadata"][RUN_ID_METADATA] == "run-late"


@pytest.mark.integration
@pytest.mark.parametrize("existing", [False, True], ids=["created meanwhile", "replaced meanwhile"])
def test_an_object_changed_during_the_upload_is_not_overwritten(aws, existing):
    # The check before the upload and its completion are apart; If-None-Match / If-Match close the gap.
    bucket = aws.new_bucket()
    if existing:
        publish(store(aws, bucket), b"before")
    with pytest.raises(ConcurrentPublicationError, match="changed while this run published it"):
        with store(aws, bucket, LATE).publish(NAME) as sink:
            sink.write(b"slow writer")
            publish(store(aws, bucket), b"fast writer")
    assert read(store(aws, bucket)) == b"fast writer"


@pytest.mark.integration
def test_a_multipart_upload_does_not_overwrite_an_object_created_meanwhile(aws):
    bucket = aws.new_bucket()
    target = S3ReportStore(aws.client("s3"), bucket, "", S3Options(), part_size=PART)
    with pytest.raises(ConcurrentPublicationError), target.publish(NAME) as sink:
        sink.write(b"m" * (PART + 10))
        publish(S3ReportStore(aws.client("s3"), bucket, "", S3Options()), b"fast writer")
    assert read(target) == b"fast writer"


@pytest.mark.integration
@pytest.mark.xfail(strict=True, reason="moto 5.2 ignores If-Match on CompleteMultipartUpload (S3 honours it)")
def test_a_multipart_upload_does_not_overwrite_an_object_replaced_meanwhile(aws):
    bucket = aws.new_bucket()
    target = S3ReportStore(aws.client("s3"), bucket, "", S3Options(), part_size=PART)
    publish(target, b"before")
    with pytest.raises(ConcurrentPublicationError), target.publish(NAME) as sink:
        sink.write(b"m" * (PART + 10))
        publish(S3ReportStore(aws.client("s3"), bucket, "", S3Options()), b"fast writer")


@pytest.mark.integration
def test_names_cannot_reach_outside_the_prefix(aws):
    bucket = aws.new_bucket()
    target = store(aws, bucket)
    for name in ["../FirmESGRatings_20261125.csv.enc", "a/b/c/d", "a//b", "a/../b", "..", ".hidden", ""]:
        with pytest.raises(ValueError, match="invalid file name"):
            publish(target, b"x", name)
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="daily/ratings/a/b/c/FirmESGRatings_20261125.csv.enc", Body=b"x")
    s3.put_object(Bucket=bucket, Key="daily/ratings/.hidden/FirmESGRatings_20261125.csv.enc", Body=b"x")
    s3.put_object(Bucket=bucket, Key="daily/ratings-other", Body=b"x")
    assert target.list() == []


@pytest.mark.integration
def test_delete_removes_every_version_in_a_versioned_bucket(aws):
    bucket = aws.new_bucket(versioned=True)
    target = store(aws, bucket)
    publish(target, b"one")
    publish(target, b"two")
    target.delete(NAME)
    versions = aws.client("s3").list_object_versions(Bucket=bucket)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []


@pytest.mark.e2e
def test_the_daily_run_publishes_to_s3_and_the_files_match_their_manifest(aws, job_environment, monkeypatch):
    bucket = aws.new_bucket()
    with SandboxServer(SandboxConfig(accounts=80, seed=4, failure_rate=0.05)) as sandbox:
        paths = job_environment(sandbox)
        monkeypatch.setenv("ESG_OUTPUT_URI", f"s3://{bucket}/esg")
        monkeypatch.setenv("ESG_S3_ENDPOINT_URL", aws.endpoint)
        first = run_all()
        target = report_store_for(f"s3://{bucket}/esg", S3Options(endpoint_url=aws.endpoint))
        keys = key_file_keyring(load_key_ring(paths["key_file"]))
        old = committed_manifest(target, keys, DAY)
        # A re-run killed while it uploaded a staged file: a multipart upload, never completed.
        s3 = aws.client("s3")
        killed = f"esg/{versions_folder(DAY)}/20261120T110000Z-deadbeef-0000/{ratings_file_name(DAY)}"
        s3.create_multipart_upload(Bucket=bucket, Key=killed)
        assert "20261120T110000Z-deadbeef-0000" in target.subfolders(versions_folder(DAY))
        second = run_all()
    assert first.success and second.success
    manifest = committed_manifest(target, keys, DAY)
    assert manifest.run_id == second.run_id and manifest.version != old.version
    # Only the manifest at the top; the live set under its version; the old set and the killed staging gone.
    assert target.list() == sorted([manifest_file_name(DAY), *(entry.path for entry in manifest.files)])
    assert target.subfolders(versions_folder(DAY)) == [manifest.version]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert any(
        entry.name.startswith("FirmESGSummary_20261120") for entry in manifest.files
    )  # the summary too
    assert verify_day(target, keys, DAY).problems == []
    for name in [manifest_file_name(DAY), manifest.entry("ratings").path]:
        head = s3.head_object(Bucket=bucket, Key=f"esg/{name}", ChecksumMode="ENABLED")
        assert (
            head["ServerSideEncryption"] == "aws:kms" and head["Metadata"][RUN_ID_METADATA] == second.run_id
        )
        assert head.get("ChecksumSHA256")
    assert not paths["output"].exists()  # nothing went to the local default


def run_all():
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            ALL_ASSETS, partition_key=DAY.isoformat(), resources=dagster_resources(), instance=instance
        )


@pytest.mark.integration
def test_the_publishing_lock_is_exclusive_released_and_taken_over_only_when_stale(aws):
    bucket = aws.new_bucket()
    first, second = store(aws, bucket), store(aws, bucket)
    s3 = aws.client("s3")
    with first.exclusive("publishing-20261120.lock"):
        with pytest.raises(LockedError, match="publishing-20261120.lock is held by esg-report since"):
            with second.exclusive("publishing-20261120.lock"):
                pass
    with second.exclusive("publishing-20261120.lock"):  # released when the block ended
        pass
    # A lock a killed run left five hours ago (longer than a run may last) is taken over.
    stale = (datetime.now(UTC) - timedelta(hours=6)).isoformat(timespec="seconds")
    s3.put_object(Bucket=bucket, Key="daily/ratings/publishing-20261120.lock", Body=b"",
                  Metadata={"holder": "run-killed", "since": stale})  # fmt: skip
    with first.exclusive("publishing-20261120.lock"):
        head = s3.head_object(Bucket=bucket, Key="daily/ratings/publishing-20261120.lock")
        assert head["Metadata"]["holder"] == "esg-report"
    fresh = datetime.now(UTC).isoformat(timespec="seconds")
    s3.put_object(Bucket=bucket, Key="daily/ratings/publishing-20261120.lock", Body=b"",
                  Metadata={"holder": "run-live", "since": fresh})  # fmt: skip
    with pytest.raises(LockedError, match="held by run-live"):
        with first.exclusive("publishing-20261120.lock"):
            pass
