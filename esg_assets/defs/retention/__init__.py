"""Retention: the daily job that deletes what ESG_RETENTION_DAYS has run out on, and its schedule."""

from esg_assets.defs.retention.job import retention_job
from esg_assets.defs.retention.schedule import retention_schedule

__all__ = ["retention_job", "retention_schedule"]
