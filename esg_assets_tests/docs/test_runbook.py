"""The runbook's commands, read from docs/runbook.md, run against a day that real runs of the job produced.

Every fenced block of the runbook is marked "Tested by" this file or "Checked by hand on"; every block marked
for this file (in the runbook, or operations.md) is run here, each command as written, with the runbook's
placeholders given the test day's values (``D``, ``RUN_ID``, ``ACC-0000042``), and fails when a command
exits non-zero or prints nothing: a query that matches nothing is what this test is for. A new block is
covered by marking it.

The day: the sandbox's accounts (a fifth of them Failed on every request), one run of
`dagster asset materialize` that fails (a wrong client secret) and one that succeeds, both in the instance of
a running ``dagster-daemon``; the alert and run metrics sensors evaluated on both runs as the daemon would,
delivering to PagerDuty and a TLS relay on loopback and writing the sensors' log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, build_run_status_sensor_context

from esg_assets.config.environment import now
from esg_assets.config.resources import alerting, job_logs, pushgateway
from esg_assets.defs.alerting.sensors.run_failure import esg_run_failure_alert
from esg_assets.defs.run_metrics.sensors import run_metrics_sensors
from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.alert_loopback import SMTP_PASSWORD, SMTP_USER, alert_settings
from esg_assets_tests.support.dagster_processes import (
    MONITORED_LOCATION,
    QUEUE_AND_MONITORING_YAML,
    make_home,
    running_daemon,
    workspace_yaml,
)
from esg_assets_tests.support.decrypting import ME
from esg_assets_tests.support.doc_blocks import (
    CodeBlock,
    blocks_tested_by,
    code_blocks,
    inline_commands,
    path_of_test,
)
from esg_assets_tests.support.pagerduty_server import PagerDutyServer
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.smtp_server import SmtpServer

RUNBOOK = "docs/runbook.md"
OPERATIONS = "docs/operations.md"  # its runbook-like blocks only: its install blocks need a production host
THIS_FILE = path_of_test(__file__)
PAGES = ("docs/runbook.md", "docs/support.md")
DAY = date(2026, 11, 20)
SUPPORT = "https://intranet.firm.example/esg/support"
RUN_SECONDS = 600  # an upper bound for a busy machine, never a measure of speed

# "D" alone (not in "DIR", "-D" or "D2"), as the runbook writes the day.
_DAY_PLACEHOLDER = re.compile(r"(?<![\w-])D(?![\w-])")


def _block_id(block: CodeBlock) -> str:
    return f"{Path(block.page).stem}:{block.line}"


# --- every command of the runbook says how it is known to work (unit) ------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("page", PAGES)
def test_every_block_is_marked_tested_or_checked_by_hand(page):
    unmarked = [
        f"{block}: {block.marker!r}"
        for block in code_blocks(page)
        if not (block.tested_by or block.checked_by_hand)
    ]
    assert not unmarked, (
        "a block needs a 'Tested by `esg_assets_tests/...py`.' or 'Checked by hand on ...' line"
    )


@pytest.mark.unit
@pytest.mark.parametrize("page", (*PAGES, OPERATIONS))
def test_every_test_a_marker_names_exists_and_reads_the_page(page):
    for block in code_blocks(page):
        if block.tested_by:
            test = REPO_ROOT / block.tested_by
            assert test.is_file(), f"{block}: {block.tested_by} does not exist"
            assert f'"{page}"' in test.read_text(), f"{block}: {block.tested_by} does not read {page}"


@pytest.mark.unit
def test_every_command_quoted_in_the_text_is_a_command_of_a_marked_block():
    commands = [
        " ".join(command.split())
        for block in code_blocks(RUNBOOK)
        if block.tested_by or block.checked_by_hand
        for command in block.commands
    ]
    loose = [
        f"{RUNBOOK}:{line}: {code}"
        for line, code in inline_commands(RUNBOOK)
        if not any(" ".join(code.split()) in command for command in commands)
    ]
    assert not loose, "commands quoted in the text but in no marked block:\n" + "\n".join(loose)


@pytest.mark.unit
def test_the_runbook_has_blocks_for_this_test():
    blocks = blocks_tested_by(RUNBOOK, THIS_FILE)
    assert len(blocks) >= 8  # re-run a day and accounts, verify, audit, logs, healthcheck, sensors, daemon
    assert all(block.commands for block in blocks)


# --- each marked block, run against a real day (e2e) ------------------------------------------------------


@dataclass(frozen=True)
class RealDay:
    environment: dict[str, str] = field(repr=False)  # a failure message does not print it
    run_id: str  # the successful run
    failed_account: str  # an account the sandbox fails on every request
    log_dir: Path


@pytest.fixture(scope="module")
def real_day(tmp_path_factory, certificates) -> RealDay:
    root = tmp_path_factory.mktemp("runbook_day")
    key_file = root / "keys" / "esg.key"
    generate_key_file(key_file)
    home = make_home(root / "dagster_home", QUEUE_AND_MONITORING_YAML, workspace_yaml(MONITORED_LOCATION))
    config = SandboxConfig(accounts=60, seed=5, failure_rate=0.2, ams_noise=False)
    with (
        SandboxServer(config) as sandbox,
        PagerDutyServer() as pagerduty,
        SmtpServer(certificates, SMTP_USER, SMTP_PASSWORD) as smtp,
        running_daemon(home),
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        settings = {
            **sandbox.job_environment(),
            **alert_settings(pagerduty, smtp, certificates),
            "ESG_MAX_ATTEMPTS": "1",
            "ESG_ENCRYPTION_KEY_FILE": str(key_file),
            "ESG_OUTPUT_URI": f"file://{root / 'reports'}",
            "ESG_WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
            "ESG_AUDIT_LOG_DIR": str(root / "audit"),
            "ESG_LOG_DIR": str(root / "log"),
            "ESG_AUTHORIZED_READERS": ME,
            "ESG_SUPPORT_URL": SUPPORT,
            "DAGSTER_HOME": str(home.path),
        }
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ESG_")},
            **settings,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(REPO_ROOT),
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        materialize_the_day(environment, ESG_CLIENT_SECRET="not-the-secret", succeeds=False)
        materialize_the_day(environment, succeeds=True)
        with DagsterInstance.from_config(str(home.path)) as instance:
            run_ids = hear_the_runs(instance)
        yield RealDay(
            environment, run_ids[DagsterRunStatus.SUCCESS], failed_account(root / "log"), root / "log"
        )


def materialize_the_day(environment: dict, succeeds: bool, **overrides: str) -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "esg_assets.definitions"]
        + ["--select", "*", "--partition", DAY.isoformat()],
        cwd=REPO_ROOT,
        env={**environment, **overrides},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert (completed.returncode == 0) == succeeds, completed.stderr[-3000:]


def hear_the_runs(instance: DagsterInstance) -> dict[DagsterRunStatus, str]:
    """The failed-run alert and the run metrics sensors on each run of the day, as the daemon runs them."""
    resources = {"alerting": alerting(now), "job_logs": job_logs(now), "pushgateway": pushgateway(now)}
    ended = {
        DagsterRunStatus.SUCCESS: DagsterEventType.RUN_SUCCESS,
        DagsterRunStatus.FAILURE: DagsterEventType.RUN_FAILURE,
    }
    metrics = {sensor.name: sensor for sensor in run_metrics_sensors}
    run_ids = {}
    for record in instance.get_run_records():
        run = record.dagster_run
        run_ids[run.status] = run.run_id
        [event] = [entry.dagster_event for entry in instance.all_logs(run.run_id, of_type=ended[run.status])]
        sensors = [metrics[f"esg_run_metrics_{run.status.value.lower()}"]]
        if run.status == DagsterRunStatus.FAILURE:
            sensors.append(esg_run_failure_alert)
        for sensor in sensors:
            with build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_event=event,
                dagster_instance=instance,
                dagster_run=run,
                resources=resources,
            ) as context:
                sensor(context.for_run_failure() if run.status == DagsterRunStatus.FAILURE else context)
    assert set(run_ids) == {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}
    return run_ids


def failed_account(log_dir: Path) -> str:
    for line in (log_dir / "esg-job.jsonl").read_text().splitlines():
        entry = json.loads(line)
        found = re.match(r"account (\S+) Failed: ", entry["message"])
        if found:
            return found[1]
    raise AssertionError("the sandbox failed no account")


def runnable(block: CodeBlock, day: RealDay) -> list[str]:
    """The block's commands with the runbook's placeholders given the day's values."""
    return [
        _DAY_PLACEHOLDER.sub(DAY.isoformat(), command)
        .replace("RUN_ID", day.run_id)
        .replace("ACC-0000042", day.failed_account)
        for command in block.commands
    ]


def run_in_one_shell(commands: list[str], environment: dict, output: Path) -> list[tuple[str, int, str, str]]:
    """Each command in turn in one bash (a variable one sets is there for the next): (command, exit code,
    stdout, stderr) of each."""
    output.mkdir(parents=True, exist_ok=True)
    script = "".join(
        f"{{\n{command}\n}} >'{output}/{index}.out' 2>'{output}/{index}.err' </dev/null; "
        f"echo $? >'{output}/{index}.rc'\n"
        for index, command in enumerate(commands)
    )
    subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env=environment, timeout=RUN_SECONDS, check=False)
    return [
        (
            command,
            int((output / f"{index}.rc").read_text()),
            (output / f"{index}.out").read_text(errors="replace"),
            (output / f"{index}.err").read_text(errors="replace"),
        )
        for index, command in enumerate(commands)
    ]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "block", blocks_tested_by(RUNBOOK, THIS_FILE) + blocks_tested_by(OPERATIONS, THIS_FILE), ids=_block_id
)
def test_each_command_of_the_block_runs_and_finds_something(block, real_day, tmp_path):
    results = run_in_one_shell(runnable(block, real_day), real_day.environment, tmp_path / "commands")

    failures = [
        f"$ {command}\n  exit {code}; stdout: {out[-500:]!r}; stderr: {err[-1500:]}"
        for command, code, out, err in results
        if code != 0 or not (out.strip() or err.strip() or command.split("=", 1)[0].isidentifier())
    ]
    assert not failures, f"{block}:\n" + "\n".join(failures)


@pytest.mark.e2e
def test_the_published_summary_links_the_support_page(real_day):
    output = Path(real_day.environment["ESG_OUTPUT_URI"].removeprefix("file://"))
    [page] = list(output.rglob("FirmESGSummary_*.html"))
    assert f'<a href="{SUPPORT}">{SUPPORT}</a>' in page.read_text()
    [markdown] = list(output.rglob("FirmESGSummary_*.md"))
    assert markdown.read_text().endswith(f"Questions, or an incident to report: {SUPPORT}\n")
