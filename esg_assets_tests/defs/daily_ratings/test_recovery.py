"""Resume, conditional requests, per-account re-runs and the error log: fewer calls, nothing lost."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.day_files.day_files import day_files
from esg_assets.defs.run_metrics.run_history import run_history
from esg_assets.lib.report_store.manifest import ERRORS_KIND
from esg_assets.lib.warehouse.shard_stores import stores_progress
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import DAY, decrypted_file, parsed, run_day
from esg_assets_tests.support.warehouses import warehouse_at

pytestmark = pytest.mark.e2e


def esg_statuses(sandbox: SandboxServer) -> dict[str, int]:
    return dict(sandbox.stats()["esg"]["by_status"])


def served_since(before: dict[str, int], sandbox: SandboxServer) -> dict[str, int]:
    after = esg_statuses(sandbox)
    return {
        status: after[status] - before.get(status, 0)
        for status in after
        if after[status] - before.get(status, 0)
    }


def test_full_refresh_is_answered_by_304s_and_yields_the_same_file(job_environment):
    with SandboxServer(SandboxConfig(accounts=200, seed=21, partial_rate=0.1, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        first = decrypted_file(paths)
        before = esg_statuses(sandbox)
        run_day(run_config={"ops": {"esg_ratings": {"config": {"full_refresh": True}}}})
        refresh = served_since(before, sandbox)
    # Every account was asked again, conditionally, and nothing changed: 304s only (plus reconciliation's
    # 200s).
    assert refresh["304"] == 200
    assert refresh.get("200", 0) <= 20
    assert decrypted_file(paths) == first


def test_next_day_uses_the_previous_days_etags(job_environment):
    with SandboxServer(
        SandboxConfig(accounts=400, seed=22, daily_change_rate=0.05, ams_noise=False)
    ) as sandbox:
        job_environment(sandbox)
        run_day()
        before = esg_statuses(sandbox)
        run_day(DAY + timedelta(days=1))
        next_day = served_since(before, sandbox)
    # About 95% unchanged overnight; the 200s are the changed ratings plus the reconciliation sample.
    assert next_day["304"] >= 0.9 * 400
    assert next_day["304"] + next_day["200"] == 400 + 20


def test_rerunning_two_accounts_changes_only_their_rows(job_environment, monkeypatch):
    with SandboxServer(SandboxConfig(accounts=50, seed=23, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        before = parsed(decrypted_file(paths))
    # The same accounts, rated differently by another sandbox: only re-run accounts can pick that up.
    with SandboxServer(SandboxConfig(accounts=50, seed=24, ams_noise=False)) as other:
        for name, value in other.job_environment().items():
            monkeypatch.setenv(name, value)
        run_day(
            assets=[esg_ratings, day_files, run_history],
            run_config={"ops": {"esg_ratings": {"config": {"accounts": ["ACC-0000007", "ACC-0000031"]}}}},
        )
        assert other.stats()["esg"]["by_status"].get("200", 0) <= 2 + 20  # the two, plus reconciliation
    after = parsed(decrypted_file(paths))
    changed = [b[0] for b, a in zip(before, after, strict=True) if b != a]
    assert changed == ["ACC-0000007", "ACC-0000031"]
    assert [row[1] for row in after] == [row[1] for row in before]  # names come from the day's snapshot


def test_rerunning_an_unknown_account_fails_with_its_id(job_environment):
    with SandboxServer(SandboxConfig(accounts=20, seed=25, ams_noise=False)) as sandbox:
        job_environment(sandbox)
        run_day()
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [esg_ratings, day_files, run_history],
                partition_key=DAY.isoformat(),
                resources=dagster_resources(),
                instance=instance,
                run_config={"ops": {"esg_ratings": {"config": {"accounts": ["ACC-0000003", "ACC-9999999"]}}}},
                raise_on_error=False,
            )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "ACC-9999999" in message and "not active accounts of 2026-11-20" in message
    assert "ACC-0000003" not in message


def test_error_log_lists_every_account_not_successful_without_names(job_environment):
    config = SandboxConfig(accounts=150, seed=26, partial_rate=0.1, failure_rate=0.05, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        names = dict(sandbox.data.expected_active_accounts())
    rows = parsed(decrypted_file(paths))
    not_successful = [row[0] for row in rows if row[9] != "Successful"]
    errors = decrypted_file(paths, DAY, ERRORS_KIND).decode()
    lines = errors.split("\r\n")
    assert lines[0] == "Account ID,Processing Status,Error,HTTP Status,Attempts,Timestamp"
    assert [line.split(",")[0] for line in lines[1:-1]] == not_successful
    assert all(line.split(",")[2] for line in lines[1:-1])  # every one says why
    assert not any(names[account_id] in errors for account_id in not_successful)


def test_a_run_killed_midway_resumes_and_fetches_only_the_missing_accounts(job_environment, tmp_path):
    config = SandboxConfig(accounts=600, seed=27, latency_ms=20, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_RATE_LIMIT_PER_SECOND="100", ESG_MAX_IN_FLIGHT="4")
        environment = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"))
        Path(environment["DAGSTER_HOME"]).mkdir()
        command = [
            sys.executable, "-m", "dagster", "asset", "materialize", "-m", "esg_assets.definitions",
            "--select", "*", "--partition", DAY.isoformat(),
        ]  # fmt: skip
        job = subprocess.Popen(
            command, env=environment, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while sandbox.stats()["esg"]["requests"] < 250 and time.monotonic() < deadline:
            assert job.poll() is None, "the job ended before it could be killed"
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)  # kill -9: no clean-up of any kind
        job.wait()
        # Requests the job sent before it died are still being answered (the sandbox counts on answering).
        while sandbox.stats()["esg"]["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        served_before_restart = sandbox.stats()["esg"]["requests"]
        assert 250 <= served_before_restart < 600

        # The results it committed: in its shard's store, not yet folded into the warehouse.
        warehouse = warehouse_at(str(tmp_path / "warehouse.duckdb"))
        with warehouse.connect(read_only=True) as connection:
            (folded,) = connection.execute("SELECT count(*) FROM esg_ratings").fetchone()
        committed = sum(
            store.results for store in stores_progress(Path(warehouse.path), DAY, warehouse.keyring())
        )
        assert folded == 0 and 0 < committed <= served_before_restart

        run_day()
        second_run = sandbox.stats()["esg"]["requests"] - served_before_restart
        expected = sandbox.data.expected_active_accounts()
    # Only the accounts without a committed result were fetched (plus the reconciliation sample).
    assert second_run == 600 - committed + 20
    rows = parsed(decrypted_file(paths))
    assert [row[0] for row in rows] == [account_id for account_id, _ in expected]
    assert all(row[9] == "Successful" for row in rows)


def test_a_304_on_the_next_day_keeps_the_first_days_reasons_in_full(job_environment):
    # Unrated and Partial ratings, unchanged the next day: the second day reuses them on a 304.
    config = SandboxConfig(accounts=200, seed=27, partial_rate=0.3, daily_change_rate=0.0, ams_noise=False)
    next_day = DAY + timedelta(days=1)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        before = esg_statuses(sandbox)
        run_day(next_day)
        second = served_since(before, sandbox)

    def reasons(day) -> dict[str, str]:
        return {row[0]: row[2] for row in parsed(decrypted_file(paths, day, ERRORS_KIND))}

    first_reasons, next_reasons = reasons(DAY), reasons(next_day)
    assert second["304"] >= 190  # the next day's ratings were reused, not downloaded again
    unrated = [account for account, reason in first_reasons.items() if reason.startswith("no usable value:")]
    assert unrated and len(first_reasons) > len(unrated)  # Unrated and Partial ones
    assert all(first_reasons[account] != "no usable value: " for account in unrated)
    assert next_reasons == first_reasons  # every reason word for word, the Unrated ones too
