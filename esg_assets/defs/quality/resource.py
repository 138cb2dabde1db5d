"""The quality thresholds as a Dagster resource: the failure rate allowed and the reconciliation sample."""

from dagster import ConfigurableResource, InitResourceContext


class DataQualityResource(ConfigurableResource):
    """``ESG_MAX_FAILURE_RATE`` (a fraction, text because Dagster has no float EnvVar) and the sample size."""

    max_failure_rate: str = "0.05"
    reconciliation_sample: int = 20

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.failure_rate_threshold()
        if self.reconciliation_sample < 0:
            raise ValueError(
                f"Setting ESG_RECONCILIATION_SAMPLE must be 0 or more, got {self.reconciliation_sample}"
            )

    def failure_rate_threshold(self) -> float:
        try:
            threshold = float(self.max_failure_rate)
        except ValueError:
            threshold = -1.0
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(
                f"Setting ESG_MAX_FAILURE_RATE must be a fraction between 0 and 1 (0.05 is 5%), "
                f"got {self.max_failure_rate!r}"
            )
        return threshold
