"""Retention: the daily job that deletes what ESG_RETENTION_DAYS has run out on, and its schedule."""

from esg_assets.retention.job import retention_job
from esg_assets.retention.schedule import retention_schedule

__all__ = ["retention_job", "retention_schedule"]
