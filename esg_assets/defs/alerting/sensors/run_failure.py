"""Alerts on a failed run of the day: a critical error, or the 4-hour limit that run monitoring enforced."""

from __future__ import annotations

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.alerting.run_endings import alert_on_run_ending
from esg_assets.lib.logs.run_logging import JobLogsResource


# monitor_all_code_locations: a `dagster asset materialize` run has no code location origin, and a sensor that
# watches only its own location never hears of it; is_daily_run keeps the runs of the day's graph.
@run_failure_sensor(
    name="esg_run_failure_alert",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    description="A failed run of the day's graph: alert run_failure, or max_runtime when run "
    "monitoring stopped it at its 4-hour limit (business and dev).",
)
def esg_run_failure_alert(
    context: RunFailureSensorContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> None:
    job_logs.configure_for_sensors()
    alert_on_run_ending(
        context.instance, alerting.ledger(context.instance), context.dagster_run.run_id, context.log
    )
