"""Measures how soon `projected_late` reaches PagerDuty when a day cannot finish in time (issue 13).

Starts `esg-sandbox` (default 100,000 accounts, 5 requests a second), a PagerDuty Events API stand-in on
loopback, and `dagster-daemon` on a fresh DAGSTER_HOME with the project's dagster.yaml and code location (so
the sensors tick as in production), then runs today's partition with `dagster asset materialize`. Prints
the seconds from the start of the `esg_ratings` step (its STEP_START event) to the moment the stand-in
accepted the `projected_late` trigger, and the alert's summary; then stops everything (the run is cut
short: at 5 requests a second it would take hours).

    .venv/bin/python bench/projected_late.py
    .venv/bin/python bench/projected_late.py --accounts 100000 --rate-limit 5 --timeout 600
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, RunsFilter

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))  # the test suite's stand-ins and process helpers

from run_bench import start_sandbox  # noqa: E402 (bench/, this script's folder)

from esg_assets.defs.alerting.job_day import central_day  # noqa: E402
from esg_assets_tests.support.dagster_processes import (  # noqa: E402
    PROJECT_LOCATION,
    make_home,
    running_daemon,
    stop,
    workspace_yaml,
)
from esg_assets_tests.support.pagerduty_server import PagerDutyServer  # noqa: E402

ROUTING_KEY = "B3nchR0ut1ngKey0123456789abcdefg"


def step_start(instance: DagsterInstance, run_id: str, step: str) -> float | None:
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START):
        if entry.step_key == step:
            return entry.timestamp
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rate-limit", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the alert")
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench" / "projected_late")
    options = parser.parse_args()

    shutil.rmtree(options.work, ignore_errors=True)
    options.work.mkdir(parents=True)
    partition = central_day(datetime.now(timezone.utc)).isoformat()
    sandbox, sandbox_settings = start_sandbox(
        ["--accounts", str(options.accounts), "--seed", "7", "--rate-limit", str(options.rate_limit)],
        options.work / "sandbox.log",
        own_session=True,
    )
    with PagerDutyServer() as pagerduty:
        os.environ.update(sandbox_settings)
        os.environ.update(
            {
                "ESG_RATE_LIMIT_PER_SECOND": str(options.rate_limit),
                "ESG_OUTPUT_URI": f"file://{options.work / 'reports'}",
                "ESG_WAREHOUSE_PATH": str(options.work / "warehouse.duckdb"),
                "ESG_ENCRYPTION_KEY_FILE": str(options.work / "esg-report.key"),
                "ESG_AUDIT_LOG_DIR": str(options.work / "audit"),
                "ESG_LOG_DIR": str(options.work / "log"),
                "ESG_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "ESG_PAGERDUTY_EVENTS_URL": pagerduty.events_url,
            }
        )
        subprocess.run(
            [str(BIN / "esg-report"), "keygen", "--output", os.environ["ESG_ENCRYPTION_KEY_FILE"]], check=True
        )
        home = make_home(
            options.work / "dagster_home",
            (REPO / "dagster.yaml").read_text(),
            workspace_yaml(PROJECT_LOCATION),
        )
        os.environ["DAGSTER_HOME"] = str(home.path)
        job = None
        try:
            with running_daemon(home):
                with (options.work / "materialize.log").open("w") as log:
                    job = subprocess.Popen(
                        [
                            str(BIN / "dagster"), "asset", "materialize", "-m", "esg_assets.definitions",
                            "--select", "*", "--partition", partition,
                        ],
                        cwd=REPO, env=home.environment, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                return wait_for_alert(home.path, pagerduty, partition, options.timeout)
        finally:
            if job is not None:
                stop(job)
            stop(sandbox)


def wait_for_alert(home: Path, pagerduty: PagerDutyServer, partition: str, timeout: float) -> int:
    dedup_key = f"esg-{partition}-projected_late"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e for e in pagerduty.state.accepted if e.get("dedup_key") == dedup_key]
        if events:
            received = time.time()
            break
        time.sleep(0.2)
    else:
        print(f"no {dedup_key} within {timeout:.0f} s", file=sys.stderr)
        return 1
    with DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_run_records(RunsFilter(tags={"dagster/partition": partition}), limit=1)
        started = step_start(instance, record.dagster_run.run_id, "esg_ratings")
    utc = lambda seconds: datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    print(f"esg_ratings started   {utc(started)}")
    print(f"PagerDuty got trigger {utc(received)}")
    print(f"seconds from esg_ratings start to the PagerDuty event: {received - started:.1f}")
    print(f"summary: {events[0]['payload']['summary']}")
    print(f"severity: {events[0]['payload']['severity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
