"""Real Dagster processes for a test: ``dagster-daemon`` and ``dagster-webserver`` on a fresh DAGSTER_HOME.

The fixtures that start them (``dagster_daemon``, ``dagster_webserver``) are in the root conftest.py. Every
wait polls against a deadline that only keeps a broken install from hanging the suite; nothing is asserted
about how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from dagster import AssetKey, DagsterInstance

from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.ports import free_port

BIN = Path(sys.executable).parent
START_SECONDS = 120  # an upper bound for a slow, busy machine, never a measure of speed

# The production run queue (dagster.QueuedRunCoordinator, as dagster.yaml's run concurrency implies) and run
# monitoring, both polling every second so that a test does not wait for them.
QUEUE_AND_MONITORING_YAML = """
run_monitoring:
  enabled: true
  poll_interval_seconds: 1
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""

# A tiny code location (esg_assets_tests/support/monitored_location.py): the daily job's name and partitions,
# an op that oversleeps, and no schedule or sensor for a daemon to tick.
MONITORED_LOCATION = f"""
  - python_module:
      module_name: esg_assets_tests.support.monitored_location
      working_directory: {REPO_ROOT}
      location_name: monitored
"""

# The project's own code location, as workspace.yaml loads it.
PROJECT_LOCATION = f"""
  - python_module:
      module_name: esg_assets.definitions
      working_directory: {REPO_ROOT}
      location_name: esg_assets
"""


def workspace_yaml(*locations: str) -> str:
    """A workspace.yaml that loads ``locations`` (MONITORED_LOCATION, PROJECT_LOCATION)."""
    return "load_from:" + "".join(locations)


@dataclass(frozen=True)
class DagsterHome:
    """A DAGSTER_HOME with its dagster.yaml and workspace.yaml, and the environment of a process using it."""

    path: Path
    workspace: Path
    environment: dict[str, str]

    def log(self, name: str) -> str:
        """The end of a log in the home (``daemon.log``, ``webserver.log``), for a failure message."""
        path = self.path / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else f"({name} is empty)"


def make_home(path: Path, dagster_yaml: str, workspace_yaml: str) -> DagsterHome:
    """Writes the home's dagster.yaml and workspace.yaml and creates its SQLite storages.

    The storages are created here, before any Dagster process starts: two processes creating them at once race
    ("table instigators already exists").
    """
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(dagster_yaml)
    workspace = path / "workspace.yaml"
    workspace.write_text(workspace_yaml)
    with DagsterInstance.from_config(str(path)) as instance:
        instance.get_run_records(limit=1)
        instance.all_instigator_state()
        instance.get_latest_materialization_event(AssetKey("esg_ratings"))
        instance.get_daemon_heartbeats()
    environment = {**os.environ, "DAGSTER_HOME": str(path), "PYTHONPATH": str(REPO_ROOT)}
    return DagsterHome(path, workspace, environment)


def _start(command: list[str], home: DagsterHome, log_name: str, cwd: Path | None = None) -> subprocess.Popen:
    with (home.path / log_name).open("ab") as log:
        # Its own session (process group), so the code server and run workers it starts are stopped with it.
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=home.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (the process and what it started), SIGKILL if it does not exit."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def heartbeats(home: DagsterHome) -> dict[str, float]:
    """The timestamp of the latest heartbeat of each daemon the home's instance needs (missing: none yet)."""
    with DagsterInstance.from_config(str(home.path)) as instance:
        beats = instance.get_daemon_heartbeats()
        return {
            daemon: beats[daemon].timestamp
            for daemon in instance.get_required_daemon_types()
            if daemon in beats
        }


def start_daemon(home: DagsterHome) -> subprocess.Popen:
    """``dagster-daemon run`` on ``home``, returned once every daemon the instance needs sent a heartbeat."""
    process = _start([str(BIN / "dagster-daemon"), "run", "-w", str(home.workspace)], home, "daemon.log")
    with DagsterInstance.from_config(str(home.path)) as instance:
        required = set(instance.get_required_daemon_types())
    deadline = time.monotonic() + START_SECONDS
    try:
        while set(heartbeats(home)) != required:
            if process.poll() is not None:
                raise RuntimeError(
                    f"dagster-daemon exited with {process.returncode}:\n{home.log('daemon.log')}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no heartbeat from every daemon after {START_SECONDS} s:\n{home.log('daemon.log')}"
                )
            time.sleep(0.5)
    except BaseException:
        stop(process)
        raise
    return process


@contextmanager
def running_daemon(home: DagsterHome) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on ``home`` while the block runs, every daemon already beating."""
    process = start_daemon(home)
    try:
        yield process
    finally:
        stop(process)


@dataclass(frozen=True)
class Webserver:
    """A running ``dagster-webserver``: its base URL on loopback and its DAGSTER_HOME."""

    url: str
    port: int
    home: DagsterHome


@contextmanager
def running_webserver(home: DagsterHome, cwd: Path = REPO_ROOT) -> Iterator[Webserver]:
    """``dagster-webserver`` on a free loopback port with the home's workspace, answering HTTP."""
    port = free_port()
    command = [str(BIN / "dagster-webserver"), "-w", str(home.workspace), "-h", "127.0.0.1", "-p", str(port)]
    process = _start(command, home, "webserver.log", cwd=cwd)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(process, base_url, home)
        yield Webserver(base_url, port, home)
    finally:
        stop(process)


def _wait_until_serving(process: subprocess.Popen, base_url: str, home: DagsterHome) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dagster-webserver exited with {process.returncode}:\n{home.log('webserver.log')}"
            )
        try:
            if requests.get(f"{base_url}/server_info", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"dagster-webserver did not answer within {START_SECONDS} s:\n{home.log('webserver.log')}"
    )


LOCATION_STATUSES = """
query {
  locationStatusesOrError {
    __typename
    ... on WorkspaceLocationStatusEntries { entries { name loadStatus } }
  }
}
"""


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    """The ``data`` of a GraphQL query to the webserver's public API (POST /graphql); fails on ``errors``."""
    reply = requests.post(
        f"{base_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    reply.raise_for_status()
    body = reply.json()
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_until_loaded(base_url: str, home: DagsterHome) -> None:
    """Waits until every code location of the webserver's workspace has loaded."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        statuses = graphql(base_url, LOCATION_STATUSES)["locationStatusesOrError"]
        entries = statuses.get("entries") or []
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the workspace did not load within {START_SECONDS} s:\n{home.log('webserver.log')}")
