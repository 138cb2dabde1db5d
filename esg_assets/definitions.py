"""The code location: the daily assets, the jobs, schedules, sensors and resources, assembled."""

from dagster import Definitions, in_process_executor

from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.day_files.day_files import day_files
from esg_assets.defs.run_metrics.run_history import run_history
from esg_assets.defs.daily_ratings.job import esg_daily_job
from esg_assets.config.resources import resources_from_env
from esg_assets.defs.retention import retention_job, retention_schedule
from esg_assets.defs.daily_ratings.schedule import esg_daily_schedule
from esg_assets.defs.alerting.sensors import all_sensors

defs = Definitions(
    assets=[active_accounts, esg_ratings, day_files, run_history],
    jobs=[esg_daily_job, retention_job],
    schedules=[esg_daily_schedule, retention_schedule],
    sensors=all_sensors,
    resources=resources_from_env(),
    # One process runs the steps in order: DuckDB allows one writer per file, and a step process costs
    # seconds of start-up for nothing here (the parallelism is inside esg_ratings).
    executor=in_process_executor,
)
