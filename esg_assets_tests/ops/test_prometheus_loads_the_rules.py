"""docs/operations.md's Prometheus configuration, as written, loads the shipped rules, scrapes a real
Pushgateway the job pushed to, and raises the alert; without honor_labels the job's series are exported_job
and match no rule."""

import copy
import re
import subprocess
import time
from urllib.parse import urlparse

import pytest
import yaml

from esg_assets.core.keys import DAILY_JOB_NAME
from esg_assets.lib.pushgateway.metrics import RunMetrics, push_run_metrics
from esg_assets_tests.support.ops_files import RULES_FILE
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.prometheus_server import firing_alerts, instant_query, running_prometheus

pytestmark = pytest.mark.integration

PARTITION = "2026-11-24"


def _documented_config() -> dict:
    """The yaml block of docs/operations.md's section on Prometheus."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    section = text.split("### 6. Metrics in Prometheus and Grafana", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "docs/operations.md shows no Prometheus configuration"
    return yaml.safe_load(block.group(1))


def _config_for(gateway_url: str, rules_file) -> dict:
    """The documented configuration with this test's rules path and gateway, a fast clock, and a second
    scrape of the same gateway without honor_labels."""
    config = _documented_config()
    assert config["rule_files"] == ["/etc/prometheus/esg-alerts.yml"]
    config["rule_files"] = [str(rules_file)]
    (scrape,) = config["scrape_configs"]
    assert scrape["honor_labels"] is True
    scrape["static_configs"] = [{"targets": [urlparse(gateway_url).netloc]}]
    raw = copy.deepcopy(scrape)
    raw.update(job_name="pushgateway-raw", honor_labels=False)
    config["scrape_configs"].append(raw)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    return config


def _a_day_with_too_many_failures() -> RunMetrics:
    return RunMetrics(
        duration_seconds=600.0, accounts_by_status={"Successful": 90, "Partial": 0, "Failed": 10},
        failure_rate=0.10, api_requests=110, retries=10, throttled_429=0, not_modified_304=0,
        throughput_per_second=40.0, file_size_bytes=2048, success=True,
    )  # fmt: skip


def test_promtool_check_config_checks_the_rule_files_it_names(promtool, tmp_path):
    rules = tmp_path / "esg-alerts.yml"
    rules.write_text(RULES_FILE.read_text())
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config_for("http://127.0.0.1:9091", rules)))
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "esg-alerts.yml" in checked.stdout + checked.stderr

    broken_rules = RULES_FILE.read_text().replace("vector(0.05)", "vector(0.05")  # a broken expression
    assert broken_rules != RULES_FILE.read_text()
    rules.write_text(broken_rules)
    broken = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert broken.returncode != 0


def test_the_documented_configuration_raises_the_alert_on_the_pushed_metrics(
    pushgateway, prometheus, tmp_path
):
    assert push_run_metrics(
        pushgateway, DAILY_JOB_NAME, PARTITION, _a_day_with_too_many_failures(), allow_insecure_http=True
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config_for(pushgateway, RULES_FILE)))

    with running_prometheus(prometheus, config, tmp_path) as url:
        # Scrapes and evaluations run every second; the deadline only bounds a broken setup.
        deadline = time.monotonic() + 60
        while not (
            alerts := [
                a for a in firing_alerts(url) if a["labels"]["alertname"] == "EsgRatingsFailureRateHigh"
            ]
        ):
            assert time.monotonic() < deadline, (
                f"no EsgRatingsFailureRateHigh firing; firing: {firing_alerts(url)}"
            )
            time.sleep(0.5)
        # The raw scrape is a job of its own: its first scrape may come after the alert fired.
        while not (raw := instant_query(url, 'esg_ratings_failure_rate{job="pushgateway-raw"}')):
            assert time.monotonic() < deadline, "the raw scrape job never scraped the gateway"
            time.sleep(0.5)
        everything = firing_alerts(url)

    (alert,) = alerts  # one, from the honor_labels scrape: the raw scrape's series match no rule
    assert alert["labels"] == {
        "alertname": "EsgRatingsFailureRateHigh", "job": DAILY_JOB_NAME, "partition": PARTITION,
        "severity": "warning",
    }  # fmt: skip
    assert alert["annotations"]["summary"] == f"10% of the accounts of {PARTITION} Failed"
    assert alert["annotations"]["runbook_url"] == "docs/runbook.md#failure_rate"
    (series,) = raw
    assert series["metric"]["exported_job"] == DAILY_JOB_NAME
    # a day just pushed, successful, fast: nothing else about it fires
    assert {a["labels"]["alertname"] for a in everything} == {"EsgRatingsFailureRateHigh"}
