"""The retention period (ESG_RETENTION_DAYS) as a Dagster resource, and its floor (ESG_RETENTION_MIN_DAYS)."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import ConfigurableResource

from esg_assets.core.setting_values import setting_check, whole_number
from esg_assets.core.settings import RETENTION_DAYS, RETENTION_MIN_DAYS


class RetentionResource(ConfigurableResource):
    """How many days a day's files, warehouse rows and run logs are kept (2555 by default: seven years)."""

    retention_days: int = int(RETENTION_DAYS.default)  # type: ignore[arg-type]

    _days = setting_check("retention_days", RETENTION_DAYS, whole_number)


@dataclass(frozen=True)
class RetentionFloor:
    """The floor of the retention period, as the code location's environment (``/etc/esg/esg.env``) sets it.

    Not a field of ``RetentionResource``: a resource's fields can be overridden in a run's config (the UI's
    Launchpad), so a floor kept there could be lowered by whoever launches the run. The definitions give it
    to the retention job as a resource without config. Kept as text and checked by ``days()``, so a bad value
    fails the retention run (deleting nothing), not the code location.
    """

    text: str = RETENTION_MIN_DAYS.default  # type: ignore[assignment]
    problem: str = ""  # why the floor could not be read (an untrusted site file): every real run is refused

    def days(self) -> int:
        if self.problem:
            raise ValueError(self.problem)
        return whole_number(RETENTION_MIN_DAYS, self.text)
