"""The 05:00 America/Chicago schedule of the daily job; the partition date is the run key."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from esg_assets.defs.daily_ratings.job import esg_daily_job

# The timezone comes from the partitions definition (America/Chicago); end_offset=1 there makes the 05:00
# tick ask for today's partition.
esg_daily_schedule = build_schedule_from_partitioned_job(
    esg_daily_job,
    name="esg_daily_schedule",
    hour_of_day=5,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.RUNNING,
)
