"""The quality thresholds as a Dagster resource: the failure rate allowed and the reconciliation sample."""

from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.setting_values import fraction, setting_check, whole_number


class DataQualityResource(ConfigurableResource):
    """``ESG_MAX_FAILURE_RATE`` (a fraction, text because Dagster has no float EnvVar) and the sample size."""

    max_failure_rate: str = settings.MAX_FAILURE_RATE.default  # type: ignore[assignment]
    reconciliation_sample: int = int(settings.RECONCILIATION_SAMPLE.default)  # type: ignore[arg-type]

    _rate = setting_check("max_failure_rate", settings.MAX_FAILURE_RATE, fraction)
    _sample = setting_check("reconciliation_sample", settings.RECONCILIATION_SAMPLE, whole_number, low=0)

    def failure_rate_threshold(self) -> float:
        return fraction(settings.MAX_FAILURE_RATE, self.max_failure_rate)
