"""The code location: every feature's definitions, merged, with the resources the settings configure."""

from dagster import Definitions, in_process_executor

from esg_assets.config.resources import dagster_resources
from esg_assets.defs.alerting import definitions as alerting
from esg_assets.defs.daily_ratings import definitions as daily_ratings
from esg_assets.defs.day_files import definitions as day_files
from esg_assets.defs.retention import definitions as retention
from esg_assets.defs.run_metrics import definitions as run_metrics

defs = Definitions.merge(
    daily_ratings.defs,
    day_files.defs,
    run_metrics.defs,
    alerting.defs,
    retention.defs,
    Definitions(
        resources=dagster_resources(),
        # One process runs the steps in order: DuckDB allows one writer per file, and a step process costs
        # seconds of start-up for nothing here (the parallelism is inside esg_ratings).
        executor=in_process_executor,
    ),
)
