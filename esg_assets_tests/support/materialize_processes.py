"""`dagster asset materialize` of one day as a process, as the runbook runs it, on a shared home."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun

from esg_assets_tests.support.dagster_processes import (
    PROJECT_LOCATION,
    DagsterHome,
    make_home,
    workspace_yaml,
)
from esg_assets_tests.support.paths import REPO_ROOT


def project_home(path: Path) -> DagsterHome:
    """A DAGSTER_HOME with the project's own dagster.yaml, its SQLite storages created before any process
    starts (two processes creating them at once race)."""
    return make_home(path, (REPO_ROOT / "dagster.yaml").read_text(), workspace_yaml(PROJECT_LOCATION))


@dataclass
class MaterializeProcess:
    """A running `dagster asset materialize` and the file its stdout and stderr go to."""

    process: subprocess.Popen
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def start_materialize(home: DagsterHome, day: date, output: Path, select: str = "*") -> MaterializeProcess:
    """``python -m dagster asset materialize -m esg_assets.definitions --select SELECT --partition DAY`` in
    its own session (a test can kill it and all it started), with the test's environment and ``home``."""
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize", "-m", "esg_assets.definitions",
        "--select", select, "--partition", day.isoformat(),
    ]  # fmt: skip
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
