"""The 06:00 America/Chicago schedule of the retention job."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from esg_assets.core.partitions import JOB_TIMEZONE
from esg_assets.defs.retention.job import retention_job

# An hour after the daily run starts: if that run is still writing, the one-run-at-a-time instance
# (dagster.yaml) queues this one behind it, so the two never hold the warehouse at once.
retention_schedule = ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="0 6 * * *",
    execution_timezone=JOB_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
)
