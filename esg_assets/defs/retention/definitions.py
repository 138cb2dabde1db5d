"""Retention: the job that deletes what ESG_RETENTION_DAYS has run out on, and its 06:00 schedule."""

from dagster import Definitions

from esg_assets.defs.retention.job import retention_job
from esg_assets.defs.retention.schedule import retention_schedule

defs = Definitions(jobs=[retention_job], schedules=[retention_schedule])
