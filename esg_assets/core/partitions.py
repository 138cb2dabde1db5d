"""The daily partitions of the job: one per Central calendar day, today's included."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

JOB_TIMEZONE = "America/Chicago"
# The tag Dagster puts on a partition's runs; dagster exports no public name for it (its own is in dagster._core).
PARTITION_TAG = "dagster/partition"

# end_offset=1 makes today's Central date a partition, so the 05:00 run asks for today, not yesterday.
daily_partitions = DailyPartitionsDefinition(start_date="2026-01-01", timezone=JOB_TIMEZONE, end_offset=1)


def partition_day(partition_key: str) -> date:
    """The calendar day a partition key names."""
    return date.fromisoformat(partition_key)
