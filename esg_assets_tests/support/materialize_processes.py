"""`dagster asset materialize` of one day as a process, as the runbook runs it, on a shared home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun

from esg_assets_tests.support.dagster_processes import (
    BIN,
    PROJECT_LOCATION,
    DagsterHome,
    make_home,
    workspace_yaml,
)
from esg_assets_tests.support.paths import REPO_ROOT


def project_home(path: Path, max_concurrent_runs: int | None = None) -> DagsterHome:
    """A DAGSTER_HOME with the project's own dagster.yaml (its run queue allowing ``max_concurrent_runs`` when
    given) and code location, its SQLite storages created before any process starts (two at once race)."""
    dagster_yaml = (REPO_ROOT / "dagster.yaml").read_text()
    if max_concurrent_runs is not None:
        assert "max_concurrent_runs: 1\n" in dagster_yaml
        dagster_yaml = dagster_yaml.replace(
            "max_concurrent_runs: 1\n", f"max_concurrent_runs: {max_concurrent_runs}\n"
        )
    return make_home(path, dagster_yaml, workspace_yaml(PROJECT_LOCATION))


@dataclass
class MaterializeProcess:
    """A running `dagster asset materialize` and the file its stdout and stderr go to."""

    process: subprocess.Popen
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def start_materialize(
    home: DagsterHome, day: date, output: Path, select: str = "*", config_json: str | None = None
) -> MaterializeProcess:
    """``python -m dagster asset materialize -m esg_assets.definitions --select SELECT --partition DAY``
    (``--config-json`` when given) in its own session (a test can kill it and all it started), with the
    test's environment and ``home``."""
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize", "-m", "esg_assets.definitions",
        "--select", select, "--partition", day.isoformat(),
    ]  # fmt: skip
    if config_json is not None:
        command += ["--config-json", config_json]
    environment = {**os.environ, "DAGSTER_HOME": str(home.path)}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return MaterializeProcess(process, output)


def launch_through_queue(home: DagsterHome, day: date) -> subprocess.CompletedProcess:
    """The runbook's queued launch of a day: ``dagster job launch`` of the daily job, for the daemon."""
    tags = {"dagster/partition": day.isoformat(), "esg/launched_by": "dagster job launch"}
    command = [
        str(BIN / "dagster"), "job", "launch", "-w", str(home.workspace), "-j", "esg_daily_job",
        "--tags", json.dumps(tags),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO_ROOT, env=home.environment, capture_output=True, text=True, timeout=300
    )


def runs_of_day(home: DagsterHome, day: date) -> list[DagsterRun]:
    """Every run of ``day`` in the home's instance, oldest first."""
    with DagsterInstance.from_config(str(home.path)) as instance:
        records = instance.get_run_records()
        return [
            record.dagster_run
            for record in reversed(records)
            if record.dagster_run.tags.get("dagster/partition") == day.isoformat()
        ]


def events_of(home: DagsterHome, run_id: str, *types: DagsterEventType) -> list:
    """The run's events of ``types`` in the home's instance."""
    with DagsterInstance.from_config(str(home.path)) as instance:
        return instance.all_logs(run_id, of_type=set(types))
