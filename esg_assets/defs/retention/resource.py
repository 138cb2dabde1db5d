"""The retention period (ESG_RETENTION_DAYS) as a Dagster resource, and its floor (ESG_RETENTION_MIN_DAYS)."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext

from esg_assets.core.settings import RETENTION_DAYS, RETENTION_MIN_DAYS


class RetentionResource(ConfigurableResource):
    """How many days a day's files, warehouse rows and run logs are kept (2555 by default: seven years)."""

    retention_days: int = int(RETENTION_DAYS.default)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.retention_days < 1:
            raise ValueError(
                f"Setting {RETENTION_DAYS.name} must be a positive whole number, got {self.retention_days}"
            )


def minimum_retention_days() -> int:
    """The floor of the retention period, ESG_RETENTION_MIN_DAYS, read from the process environment.

    Not a field of ``RetentionResource``: a resource's fields can be overridden in a run's config (the UI's
    Launchpad), so a floor kept there could be lowered by whoever launches the run. The environment of the
    code location is the deployment's (``/etc/esg/esg.env``), out of the launcher's reach.
    """
    text = RETENTION_MIN_DAYS.value().strip()
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise ValueError(f"Setting {RETENTION_MIN_DAYS.name} must be a positive whole number, got {text!r}")
    return days
