"""A real Prometheus Pushgateway (Debian package prometheus-pushgateway) and what it holds. The fixture that
starts one per test module, ``pushgateway``, is in the root conftest.py."""

import shutil
import subprocess
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

GROUP_LABELS = ("job", "partition", "instance")


def pushgateway_binary() -> str | None:
    return shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


def wait_until_ready(url: str, process: subprocess.Popen, log) -> None:
    # Start-up wait, not a timing assertion: the deadline only keeps a broken install from hanging the suite.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pushgateway exited: {log.read_text(errors='replace')}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError("pushgateway did not become ready")


def gateway_samples(url: str, partition: str) -> dict[tuple[str, tuple], float]:
    """The ``esg_ratings_*`` samples the gateway holds for ``partition``: (name, other labels) -> value."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("esg_ratings_") and sample.labels.get("partition") == partition:
                assert sample.labels["job"] == "esg_daily_job"
                # the gateway adds job, partition (the grouping key) and an empty instance label
                others = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in GROUP_LABELS))
                samples[(sample.name, others)] = sample.value
    return samples
