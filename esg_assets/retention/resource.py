"""The retention period (ESG_RETENTION_DAYS) as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext

from esg_assets.settings import RETENTION_DAYS


class RetentionResource(ConfigurableResource):
    """How many days a day's files, warehouse rows and run logs are kept (2555 by default: seven years)."""

    retention_days: int = int(RETENTION_DAYS.default)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.retention_days < 1:
            raise ValueError(
                f"Setting {RETENTION_DAYS.name} must be a positive whole number, got {self.retention_days}"
            )
