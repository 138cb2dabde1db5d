"""The code location: every feature's definitions, merged, with the resources the settings configure."""

from dagster import Definitions, ExecutorDefinition

from esg_assets.config.executor import daily_executor
from esg_assets.config.resources import dagster_resources
from esg_assets.defs.alerting import definitions as alerting
from esg_assets.defs.daily_ratings import definitions as daily_ratings
from esg_assets.defs.day_files import definitions as day_files
from esg_assets.defs.retention import definitions as retention
from esg_assets.defs.run_metrics import definitions as run_metrics


def code_location(executor: ExecutorDefinition) -> Definitions:
    """Every feature's definitions with the resources, their jobs on ``executor`` (docs/scaling.md)."""
    return Definitions.merge(
        daily_ratings.defs,
        day_files.defs,
        run_metrics.defs,
        alerting.defs,
        retention.defs,
        Definitions(resources=dagster_resources(), executor=executor),
    )


# One process for the whole run when ESG_SHARDS is 1, else a process per step (config/executor.py).
defs = code_location(daily_executor())
