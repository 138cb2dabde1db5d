"""An AWS KMS client as dagster-aws builds its clients (there is no KMS resource in dagster-aws 0.29)."""

from __future__ import annotations

from typing import Any

import boto3
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config


class KmsResource(ResourceWithBoto3Configuration):
    """Region, endpoint, profile, credentials as dagster-aws's resources take them; ``get_client`` builds one.

    Left unset, they come from the standard AWS chain (environment, profile, instance role).
    """

    def get_client(self) -> Any:
        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            "kms",
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            verify=self.verify,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=construct_boto_client_retry_config(self.max_attempts),
        )
