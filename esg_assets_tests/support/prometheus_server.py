"""A real Prometheus server (Debian package prometheus) on loopback, started with a given configuration."""

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from esg_assets_tests.support.ports import free_port


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@contextlib.contextmanager
def running_prometheus(binary: str, config: Path, data_dir: Path) -> Iterator[str]:
    """Prometheus on 127.0.0.1 with ``config``, its URL yielded once ready; stopped on exit."""
    url = f"http://127.0.0.1:{free_port()}"
    log = data_dir / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir / 'tsdb'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=output, stderr=output,
        )  # fmt: skip
    try:
        # Start-up wait, not a timing assertion: the deadline keeps a broken install from hanging the suite.
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def firing_alerts(url: str) -> list[dict]:
    """The alerts Prometheus holds in state firing, each with its labels and annotations."""
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [alert for alert in alerts if alert["state"] == "firing"]


def instant_query(url: str, query: str) -> list[dict]:
    return requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
