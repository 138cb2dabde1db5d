"""When the run materializing an asset started, from the Dagster instance's run record."""

from datetime import datetime, timezone

from dagster import AssetExecutionContext


def run_started_at(context: AssetExecutionContext) -> datetime | None:
    """The run's start time (UTC), or None when the instance has not recorded it yet."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.start_time is None:
        return None
    return datetime.fromtimestamp(record.start_time, tz=timezone.utc)
