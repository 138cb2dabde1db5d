"""The shipped Grafana dashboard (ops/grafana/esg-dashboard.json) and the alert rules read only metrics the
job pushes: the names come from a real push of a RunMetrics to a real Pushgateway, so a metric the job adds
is allowed (and asked for on a panel) without editing this test."""

import dataclasses

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from esg_assets.core.keys import DAILY_JOB_NAME
from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.lib.pushgateway.metrics import RunMetrics, push_run_metrics
from esg_assets_tests.support.ops_files import (
    dashboard,
    panel_expressions,
    panels,
    recorded_names,
    rule_expressions,
)
from esg_assets_tests.support.promql_names import metric_names

PARTITION = "2026-11-24"


def _every_field_set() -> RunMetrics:
    """A successful run's metrics with every field given, whatever fields RunMetrics has by now."""
    values = {}
    for field in dataclasses.fields(RunMetrics):
        if field.name == "accounts_by_status":
            values[field.name] = {status.value: 1 for status in ProcessingStatus}
        elif field.name == "success":
            values[field.name] = True
        else:
            values[field.name] = 1
    return RunMetrics(**values)


def _pushed_names(gateway_url: str) -> set[str]:
    """The metric names the gateway serves for the daily job's group after a push (with the gateway's own
    push_time_seconds and push_failure_time_seconds)."""
    assert push_run_metrics(
        gateway_url, DAILY_JOB_NAME, PARTITION, _every_field_set(), allow_insecure_http=True
    )
    text = requests.get(f"{gateway_url}/metrics", timeout=5).text
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job") == DAILY_JOB_NAME and sample.labels.get("partition") == PARTITION
    }


def _unknown_names(expressions: list[tuple[str, str]], known: set[str]) -> list[str]:
    return [
        f"{where}: {sorted(metric_names(expression) - known)}"
        for where, expression in expressions
        if metric_names(expression) - known
    ]


@pytest.mark.integration
def test_every_panel_and_rule_reads_only_metrics_the_job_pushes(pushgateway):
    known = _pushed_names(pushgateway) | recorded_names()
    assert "esg_ratings_failure_rate" in known and "push_time_seconds" in known  # the push was read
    unknown = _unknown_names(panel_expressions(dashboard()) + rule_expressions(), known)
    assert not unknown, "expressions reading metrics the job does not push:\n" + "\n".join(unknown)


@pytest.mark.integration
def test_every_metric_the_job_pushes_is_on_a_panel(pushgateway):
    # A metric the job starts pushing needs one panel (its name in a query); this names the ones without.
    shown = set().union(*(metric_names(expression) for _, expression in panel_expressions(dashboard())))
    pushed = {name for name in _pushed_names(pushgateway) if name.startswith("esg_ratings_")}
    assert not pushed - shown, f"pushed but on no panel of the dashboard: {sorted(pushed - shown)}"


@pytest.mark.unit
def test_a_panel_reading_a_metric_the_job_does_not_push_is_named():
    board = {
        "panels": [{"title": "Made up", "targets": [{"refId": "A", "expr": "esg_ratings_made_up_total > 0"}]}]
    }
    unknown = _unknown_names(panel_expressions(board), {"esg_ratings_failure_rate"})
    assert unknown == ["panel 'Made up' query A: ['esg_ratings_made_up_total']"]


@pytest.mark.unit
def test_the_data_source_is_a_variable_every_panel_and_query_uses():
    board = dashboard()
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": "${" + variable["name"] + "}"}
    for panel in panels(board):
        assert panel["datasource"] == reference, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.unit
def test_the_panels_operations_asked_for_are_there():
    titles = {panel["title"] for panel in panels(dashboard())}
    assert {
        "Last success age",
        "Accounts by status per day",
        "Failure rate vs threshold",
        "Run duration vs the 4-hour limit",
        "Throughput vs configured rate",
        "ESG API requests, retries, 429s and 304s",
        "Ratings file size",
    } <= titles


@pytest.mark.unit
def test_panel_ids_are_unique():
    ids = [panel["id"] for panel in panels(dashboard())]
    assert len(ids) == len(set(ids))
