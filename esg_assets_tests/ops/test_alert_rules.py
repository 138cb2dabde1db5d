"""The shipped alert rules (ops/prometheus/esg-alerts.yml): valid, unit-tested by promtool at each
threshold, labelled and annotated for the on-call, pointing at runbook sections that exist, and holding the
job's limits."""

import subprocess
import time

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from esg_assets.core import settings
from esg_assets.defs.daily_ratings.job import RUN_WINDOW_SECONDS
from esg_assets_tests.support.ops_files import (
    RULES_FILE,
    RULES_TESTS_FILE,
    RUNBOOK,
    alerts,
    dashboard,
    panel_expressions,
    recorded_constant,
    runbook_anchors,
)


def _run(command: list[str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.integration
def test_promtool_accepts_the_rules(promtool):
    result = _run([promtool, "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_unit_tests_of_the_rules_pass(promtool):
    result = _run([promtool, "test", "rules", RULES_TESTS_FILE.name], cwd=RULES_TESTS_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_fails_a_rule_whose_threshold_moved(promtool, tmp_path):
    # The unit tests sit at the thresholds: the failure-rate limit a hair lower must make them fail.
    moved = RULES_FILE.read_text().replace("vector(0.05)", "vector(0.0499)")
    assert moved != RULES_FILE.read_text()
    (tmp_path / RULES_FILE.name).write_text(moved)
    (tmp_path / RULES_TESTS_FILE.name).write_text(RULES_TESTS_FILE.read_text())
    result = _run([promtool, "test", "rules", RULES_TESTS_FILE.name], cwd=tmp_path)
    assert result.returncode != 0
    assert "EsgRatingsFailureRateHigh" in result.stdout + result.stderr


@pytest.mark.integration
def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    # promtool parses a recording rule's expression: one rule per panel query. Grafana's $variables are
    # not used inside the queries (only as the data source), so each is plain PromQL.
    queries = panel_expressions(dashboard())
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"panel:query_{i}", "expr": q} for i, (_, q) in enumerate(queries)],
            }
        ]
    }
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump(rules))
    result = _run([promtool, "check", "rules", str(tmp_path / "dashboard-queries.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit
@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_each_alert_has_a_severity_a_summary_a_description_and_a_runbook_section(alert):
    assert alert["labels"]["severity"] in ("critical", "warning")
    annotations = alert["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == "docs/runbook.md"
    assert anchor in runbook_anchors(), f"docs/runbook.md has no section #{anchor}"


@pytest.mark.unit
@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_each_alert_is_tested_firing_and_quiet(alert):
    """Each alert has a case that fires, and a case (or a series beside the firing one) that stays quiet."""
    name = alert["alert"]
    fires = quiet = False
    for group in yaml.safe_load(RULES_TESTS_FILE.read_text())["tests"]:
        partitions = {
            label.split('"')[1]
            for series in group["input_series"]
            for label in series["series"].split(",")
            if label.strip().startswith("partition=")
        }
        for case in group.get("alert_rule_test", []):
            if case["alertname"] != name:
                continue
            if case["exp_alerts"]:
                fires = True
                firing = {expected["exp_labels"].get("partition") for expected in case["exp_alerts"]}
                quiet = quiet or bool(partitions - firing - {None})
            else:
                quiet = True
    assert fires, f"{name}: no promtool test where it fires"
    assert quiet, f"{name}: no promtool test where it stays quiet"


@pytest.mark.unit
def test_the_rules_limits_are_the_jobs():
    assert recorded_constant("esg_ratings:max_failure_rate") == float(settings.MAX_FAILURE_RATE.default)
    assert recorded_constant("esg_ratings:rate_limit_per_second") == float(
        settings.RATE_LIMIT_PER_SECOND.default
    )
    assert recorded_constant("esg_ratings:max_runtime_seconds") == RUN_WINDOW_SECONDS


@pytest.mark.unit
def test_the_runbook_says_what_each_alert_means_and_what_to_do():
    section = RUNBOOK.read_text().split("### Prometheus alerts", 1)[1].split("\n## ", 1)[0]
    missing = [alert["alert"] for alert in alerts() if f"`{alert['alert']}`" not in section]
    assert not missing, f"docs/runbook.md, Prometheus alerts, does not name {missing}"


@pytest.mark.integration
def test_a_refused_push_leaves_a_failure_time_newer_than_the_push_time(pushgateway):
    """What EsgRatingsPushRejected reads: the gateway refuses an inconsistent push (400), keeps the group's
    earlier values and records the refusal in push_failure_time_seconds."""
    group = f"{pushgateway}/metrics/job/esg_daily_job/partition/2026-11-20"
    accepted = "# TYPE esg_ratings_run_success gauge\nesg_ratings_run_success 1\n"
    assert requests.post(group, data=accepted, timeout=5).status_code == 200
    time.sleep(0.01)  # the two times must differ
    twice = 'esg_ratings_run_success{instance="x"} 0\nesg_ratings_run_success{instance="x"} 0\n'
    assert requests.post(group, data=accepted + twice, timeout=5).status_code == 400

    held = {
        sample.name: sample.value
        for family in text_string_to_metric_families(requests.get(f"{pushgateway}/metrics", timeout=5).text)
        for sample in family.samples
        if sample.labels.get("partition") == "2026-11-20"
    }
    assert held["esg_ratings_run_success"] == 1
    assert held["push_failure_time_seconds"] > held["push_time_seconds"] > 0
