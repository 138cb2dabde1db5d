"""Pushes each finished daily run's metrics to the Pushgateway, whatever launched it and however it ended.

Run status sensors rather than job hooks: a hook runs inside the run, so it never fires for a run that run
monitoring or the deadline killed, nor for one that died before its first step; and hooks on esg_daily_job do
not apply to `dagster asset materialize`, which runs its own implicit asset job. The daemon hears all of them.
"""

from __future__ import annotations

from dagster import DagsterRunStatus, DefaultSensorStatus, RunStatusSensorContext, run_status_sensor

from esg_assets.defs.daily_ratings.daily_runs import is_daily_run
from esg_assets.defs.run_metrics.run_reporting import push_metrics_of_run
from esg_assets.lib.logs.run_logging import JobLogsResource
from esg_assets.lib.pushgateway.metrics import PushgatewayResource


def _run_metrics_sensor(status: DagsterRunStatus):
    @run_status_sensor(
        run_status=status,
        name=f"esg_run_metrics_{status.value.lower()}",
        monitor_all_code_locations=True,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Pushes the metrics of a daily run that ended {status.value} to ESG_PUSHGATEWAY_URL.",
    )
    def push_metrics(
        context: RunStatusSensorContext, pushgateway: PushgatewayResource, job_logs: JobLogsResource
    ) -> None:
        # Returns nothing: a run status sensor that returns a value stops reading the tick's other events.
        job_logs.configure_for_sensors()
        run = context.instance.get_run_by_id(context.dagster_run.run_id)
        if run is not None and is_daily_run(context.instance, run):
            push_metrics_of_run(context.instance, run, pushgateway)

    return push_metrics


run_metrics_sensors = [
    _run_metrics_sensor(status)
    for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
]
