"""Alerts on a canceled run of the day: 09:00 deadline, 4-hour limit, or someone pressing Terminate."""

from __future__ import annotations

from dagster import DagsterRunStatus, DefaultSensorStatus, RunStatusSensorContext, run_status_sensor

from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.alerting.run_endings import alert_on_run_ending
from esg_assets.lib.logs.run_logging import JobLogsResource


# A canceled run is not a failed one: run_failure_sensor never hears it, so it needs its own status sensor.
@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    name="esg_run_canceled_alert",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    description="A canceled run of the day's graph: alert deadline when the deadline sensor terminated it, "
    "max_runtime when run monitoring did, else run_canceled (business and dev).",
)
def esg_run_canceled_alert(
    context: RunStatusSensorContext, alerting: AlertingResource, job_logs: JobLogsResource
) -> None:
    job_logs.configure_for_sensors()
    alert_on_run_ending(
        context.instance, alerting.ledger(context.instance), context.dagster_run.run_id, context.log
    )
