"""AWS on loopback: moto's server mode (S3 and KMS over HTTP on 127.0.0.1), not a patched boto3."""

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint():
    """The URL of a moto server for this module's tests; each test makes its own buckets and keys."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """Credentials and region for boto3 in the environment (fake: moto accepts any), and client makers."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return LoopbackAws(moto_endpoint)


class LoopbackAws:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def new_bucket(self, versioned: bool = False) -> str:
        name = f"esg-{uuid.uuid4().hex[:12]}"
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def new_kms_key(self) -> dict:
        """The new key's metadata (``KeyId``, ``Arn``)."""
        return self.client("kms").create_key(Description="esg test key")["KeyMetadata"]
