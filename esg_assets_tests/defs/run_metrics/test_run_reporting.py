"""Asset steps log JSON lines with their run, partition and asset; finished daily runs push their metrics."""

from __future__ import annotations

import json
from datetime import date

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, materialize

from esg_assets.config.environment import now
from esg_assets.config.resources import dagster_resources, job_logs
from esg_assets.config.resources import pushgateway as pushgateway_resource
from esg_assets.core.file_names import summary_file_name
from esg_assets.core.run_metadata import ResourceFigures
from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.run_metrics.run_reporting import run_metrics_of
from esg_assets.defs.run_metrics.sensors import run_metrics_sensors
from esg_assets.lib.logs.json_logs import LOG_FILE_NAME
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, live_set, materialized
from esg_assets_tests.support.pushgateway import gateway_samples
from esg_assets_tests.support.stand_in_assets import FILE_FIGURES, RATINGS_FIGURES, run_stand_in_day
from esg_assets_tests.support.warehouses import warehouse_at

pytestmark = pytest.mark.integration

PARTITION = "2026-11-19"


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def log_lines(log_dir) -> list[dict]:
    return [json.loads(line) for line in (log_dir / LOG_FILE_NAME).read_text().splitlines()]


def test_a_logged_step_writes_its_start_end_counts_and_account_errors_with_run_partition_and_asset(
    instance, job_environment, project_logs_in_tmp
):
    with SandboxServer(SandboxConfig(accounts=20, seed=2, failure_rate=0.2, ams_noise=False)) as sandbox:
        job_environment(sandbox)
        result = materialize(
            [active_accounts, esg_ratings],
            partition_key=PARTITION,
            resources=dagster_resources(),
            instance=instance,
            run_config={
                "ops": {"esg_ratings": {"config": {"full_refresh": True}}}
            },  # config still reaches it
        )
    assert result.success
    lines = [line for line in log_lines(project_logs_in_tmp) if line.get("run_id") == result.run_id]
    assert {(line["partition"], line["asset"]) for line in lines} == {
        (PARTITION, "active_accounts"),
        (PARTITION, "esg_ratings"),
    }
    lines = [line for line in lines if line["asset"] == "esg_ratings"]

    started, *accounts, finished = lines
    assert started["event"] == "asset_started" and finished["event"] == "asset_finished"
    assert started["timestamp"] <= finished["timestamp"] and finished["duration_seconds"] >= 0
    counts = finished["counts"]
    assert counts["accounts"] == counts["successful"] + counts["partial"] + counts["failed"] == 20
    failed = [line for line in accounts if line["logger"] == "esg_assets.accounts"]
    assert len(failed) == counts["failed"] > 0
    assert all(line["level"] == "WARNING" and "Failed" in line["message"] for line in failed)


def test_a_failed_step_logs_its_error_with_the_traceback_and_no_secret(instance, project_logs_in_tmp):
    result = run_stand_in_day(instance, PARTITION, error="ESG API unreachable: client_secret=hunter2")
    lines = [line for line in log_lines(project_logs_in_tmp) if line.get("run_id") == result.run_id]
    [failure] = [line for line in lines if line["event"] == "asset_failed"]
    assert failure["level"] == "ERROR" and failure["asset"] == "esg_ratings"
    assert "RuntimeError: ESG API unreachable" in failure["exception"]
    assert "hunter2" not in json.dumps(lines)


def test_metrics_of_a_finished_run_come_from_its_events(instance):
    result = run_stand_in_day(instance, PARTITION, failed=10)

    metrics = run_metrics_of(instance, instance.get_run_by_id(result.run_id))
    assert metrics.success and metrics.accounts_by_status == {"Successful": 90, "Partial": 0, "Failed": 10}
    assert metrics.failure_rate == pytest.approx(0.1)
    assert (metrics.api_requests, metrics.retries, metrics.throttled_429) == (120, 20, 1)
    assert metrics.throughput_per_second == pytest.approx(25.0)
    assert metrics.file_size_bytes == 321 and metrics.duration_seconds >= 0


@pytest.mark.parametrize(
    ("stand_in", "success"), [({"failed": 3}, 1.0), ({"error": "ESG API unreachable"}, 0.0)]
)
def test_the_metrics_sensors_push_a_finished_daily_run_to_the_pushgateway(
    instance, pushgateway, monkeypatch, stand_in, success
):
    monkeypatch.setenv("ESG_PUSHGATEWAY_URL", pushgateway)
    partition = "2026-11-18" if success else "2026-11-17"
    result = run_stand_in_day(instance, partition, **stand_in)
    run = instance.get_run_by_id(result.run_id)
    status_event = DagsterEventType.RUN_SUCCESS if result.success else DagsterEventType.RUN_FAILURE
    [event] = [entry.dagster_event for entry in instance.all_logs(run.run_id, of_type=status_event)]
    [sensor] = [s for s in run_metrics_sensors if s.name == f"esg_run_metrics_{run.status.value.lower()}"]

    with build_run_status_sensor_context(
        sensor.name, event, instance, run, resources=metrics_resources()
    ) as context:
        sensor(context)

    samples = gateway_samples(pushgateway, partition)
    assert samples[("esg_ratings_run_success", ())] == success
    if success:
        assert samples[("esg_ratings_accounts", (("status", "Failed"),))] == 3
        assert ("esg_ratings_last_success_timestamp_seconds", ()) in samples


@pytest.mark.parametrize(
    ("stand_in", "figures"),
    [
        ({}, FILE_FIGURES),  # the last step's: ratings_file ran after esg_ratings
        ({"file_error": "store down"}, RATINGS_FIGURES),  # the file step failed: the last step that finished
        ({"error": "ESG API unreachable"}, ResourceFigures()),  # no step finished: zeros
    ],
)
def test_the_metrics_carry_the_resource_figures_of_the_last_step_that_recorded_them(
    instance, stand_in, figures
):
    result = run_stand_in_day(instance, PARTITION, **stand_in)
    metrics = run_metrics_of(instance, instance.get_run_by_id(result.run_id))
    assert (
        metrics.cpu_seconds,
        metrics.peak_rss_bytes,
        metrics.warehouse_size_bytes,
        metrics.spill_bytes,
    ) == (
        figures.cpu_seconds,
        figures.peak_rss_bytes,
        figures.warehouse_size_bytes,
        figures.spill_bytes,
    )


def test_a_real_run_records_its_resource_figures_shows_them_and_pushes_them(
    instance, job_environment, pushgateway, monkeypatch, tmp_path
):
    monkeypatch.setenv("ESG_PUSHGATEWAY_URL", pushgateway)
    partition = "2026-11-16"
    with SandboxServer(SandboxConfig(accounts=300, seed=5, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        result = materialize(
            ALL_ASSETS, partition_key=partition, resources=dagster_resources(), instance=instance
        )
    assert result.success
    warehouse_file = tmp_path / "warehouse.duckdb"

    # run_history keeps the run worker's figures: plausible, and the warehouse size is the file's.
    with warehouse_at(warehouse_file).connect(read_only=True) as connection:
        cpu, rss, size, spill = connection.execute(
            "SELECT cpu_seconds, peak_rss_bytes, warehouse_size_bytes, spill_bytes FROM run_history "
            "WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
    assert cpu > 0 and rss > 10 * 1024 * 1024 and spill >= 0
    assert size == warehouse_file.stat().st_size
    figures = materialized(result, "run_history")
    assert (figures["cpu_seconds"].value, figures["warehouse_size_bytes"].value) == (cpu, size)

    # The summary's run-performance table shows them as of the summary (less CPU than the whole run).
    summary = json.loads(live_set(paths["output"], date.fromisoformat(partition))[
        summary_file_name(date.fromisoformat(partition), "json")].read_text())  # fmt: skip
    shown = summary["resources"]
    assert 0 < shown["cpu_seconds"] <= cpu and 10 * 1024 * 1024 < shown["peak_rss_bytes"] <= rss
    assert 0 < shown["warehouse_size_bytes"] and shown["spill_bytes"] >= 0

    run = instance.get_run_by_id(result.run_id)
    [event] = [e.dagster_event for e in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_SUCCESS)]
    [sensor] = [s for s in run_metrics_sensors if s.name == "esg_run_metrics_success"]
    with build_run_status_sensor_context(
        sensor.name, event, instance, run, resources=metrics_resources()
    ) as context:
        sensor(context)
    samples = gateway_samples(pushgateway, partition)
    assert samples[("esg_ratings_cpu_seconds", ())] == cpu
    assert samples[("esg_ratings_peak_rss_bytes", ())] == rss
    assert samples[("esg_ratings_warehouse_size_bytes", ())] == size
    assert samples[("esg_ratings_spill_bytes", ())] == spill


def metrics_resources() -> dict:
    """The resources the run metrics sensors take, from the ESG_* settings now."""
    return {"pushgateway": pushgateway_resource(now), "job_logs": job_logs(now)}
