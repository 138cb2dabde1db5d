"""More shards than requests in flight: the run stops before asking the API anything, naming both."""

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import DAY

pytestmark = pytest.mark.integration


def test_more_shards_than_requests_in_flight_is_refused_naming_both_settings(job_environment):
    with SandboxServer(SandboxConfig(accounts=20, seed=3, ams_noise=False)) as sandbox:
        job_environment(sandbox, ESG_SHARDS="3", ESG_MAX_IN_FLIGHT="2")
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [active_accounts, esg_ratings],
                partition_key=DAY.isoformat(),
                resources=dagster_resources(),
                instance=instance,
                raise_on_error=False,
            )
        ratings_requests = sandbox.stats()["esg"]["requests"]
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "esg_ratings.plan_shards"
    description = failure.step_failure_data.user_failure_data.description
    assert "ESG_SHARDS (3) is more than ESG_MAX_IN_FLIGHT (2)" in description
    assert ratings_requests == 0
