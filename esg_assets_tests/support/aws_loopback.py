"""AWS on loopback: moto's server mode (S3 and KMS over HTTP on 127.0.0.1), not a patched boto3.

moto emulates the services (buckets, versions, Object Lock, KMS keys and their cryptography), which scripted
replies could not. The fixtures ``moto_endpoint`` and ``aws`` are in the root conftest.py."""

import uuid

import boto3

REGION = "us-east-1"


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
