"""The whole daily graph against the sandbox: the decrypted file is byte for byte what the rules prescribe."""

import time

import pytest

from esg_assets.sandbox.data import NUMERIC_ID_KINDS
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.expected_file import name_text, sandbox_expected_file
from esg_assets_tests.support.pipeline_runs import (
    DAY,
    decrypted_file,
    live_set,
    materialized,
    parsed,
    run_day,
    stored_files,
)
from esg_assets_tests.support.warehouses import warehouse_at

pytestmark = pytest.mark.e2e


def test_file_is_exactly_what_the_rules_prescribe_for_every_account(job_environment):
    config = SandboxConfig(
        accounts=400,
        seed=5,
        partial_rate=0.12,
        failure_rate=0.03,
        transient_error_rate=0.08,
        rate_limit=400,
        max_in_flight=8,
        ams_noise=True,
    )
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox, ESG_MAX_ATTEMPTS="3")
        result = run_day()
        stats = sandbox.stats()
        expected = sandbox_expected_file(sandbox.data, DAY)

    actual = decrypted_file(paths)
    assert actual.splitlines() == expected.splitlines()  # a readable diff first ...
    assert actual == expected  # ... then every byte, CRLFs included
    assert not actual.startswith(b"\xef\xbb\xbf")
    rows = parsed(actual)
    assert {row[-1] for row in rows} == {
        "Successful",
        "Partial",
        "Failed",
    }  # the sandbox exercised every rule

    # Limits equal to the configured ones: no 429 of the job's own making.
    assert stats["esg"]["limited"] == 0
    summary = materialized(result, "daily_summary")
    assert summary["total_accounts"].value == len(rows)
    assert live_set(paths["output"])["FirmESGSummary_20261120.md"].exists()
    assert not list(paths["output"].rglob("*.csv"))  # no plaintext copy left beside the encrypted file


def test_hostile_input_costs_one_row_at_most_and_the_file_is_exactly_what_the_rules_prescribe(
    job_environment,
):
    config = SandboxConfig(
        accounts=300,
        seed=13,
        hostile_rate=0.1,
        partial_rate=0.1,
        transient_error_rate=0.05,
        rate_limit=400,
        max_in_flight=8,
        ams_noise=True,
    )
    with SandboxServer(config) as sandbox:
        # A trickled body must free its worker at this timeout, not after the minutes the trickle takes.
        paths = job_environment(sandbox, ESG_MAX_ATTEMPTS="3", ESG_HTTP_TIMEOUT_SECONDS="2")
        started = time.monotonic()
        result = run_day()
        elapsed = time.monotonic() - started
        stats = sandbox.stats()
        data = sandbox.data
        expected = sandbox_expected_file(data, DAY)

    actual = decrypted_file(paths)
    assert actual.splitlines() == expected.splitlines()
    assert actual == expected
    # The sandbox exercised every rule: each kind of hostile account, and each once-per-run fault.
    kinds = {data.hostile_kind(number) for number in range(1, config.accounts + 1)} - {None}
    assert kinds == {"surrogate", "control", "overlong", "everything", "numeric_id", "huge_numeric_id"}
    assert "\ufffd".encode() in actual and b"ACC-GHOST" not in actual
    numeric = [n for n in range(1, config.accounts + 1) if data.hostile_kind(n) in NUMERIC_ID_KINDS]
    assert not any(data.account_id(n).encode() in actual for n in numeric)  # rejected, not in the file
    assert stats["ams"]["by_status"]["400"] == 1  # the expired cursor, once
    assert stats["esg"]["hostile_pending"] == 0  # the oversized and the trickled body were both served
    assert elapsed < 120  # the trickled body alone would take minutes
    snapshot = materialized(result, "active_accounts")
    assert snapshot["ams_walk_restarts"].value == 1
    listed_names = [row["account_name"] for row in data.account_rows()]  # the complete walk's rows
    assert snapshot["rows_repaired"].value == sum(name_text(name) != name for name in listed_names) > 0
    assert snapshot["active_accounts"].value == len(parsed(actual))


def test_rerunning_a_day_replaces_its_file_and_adds_a_history_row(job_environment):
    with SandboxServer(SandboxConfig(accounts=60, seed=9, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        first, set_after_first = decrypted_file(paths), live_set(paths["output"])
        run_day()
        second, set_after_second = decrypted_file(paths), live_set(paths["output"])
    assert first == second
    # A new set replaces the old one whole, and the old one is gone: never a second file for the day.
    assert set_after_second.keys() == set_after_first.keys()
    assert {"FirmESGRatings_20261120.csv.enc", "FirmESGRatings_20261120_errors.csv.enc"} <= set(
        set_after_first
    )
    assert stored_files(paths["output"]) == sorted(
        [".publishing-20261120.lock", "FirmESGRatings_20261120.manifest.json"]  # the lock: empty, kept
        + [path.relative_to(paths["output"]).as_posix() for path in set_after_second.values()]
    )
    with warehouse_at(str(paths["output"].parent / "warehouse.duckdb")).connect(read_only=True) as connection:
        rows = connection.execute(
            "SELECT accounts, successful, api_requests FROM run_history ORDER BY finished_at"
        ).fetchall()
    # The second run resumed: every account already had a final result, so it asked the API for nothing.
    assert rows == [(60, 60, 60), (60, 60, 0)]


def test_token_revoked_mid_run_is_renewed_and_the_run_completes(job_environment):
    with SandboxServer(
        SandboxConfig(accounts=150, seed=4, token_ttl=0.5, latency_ms=5, ams_noise=False)
    ) as sandbox:
        paths = job_environment(sandbox, ESG_RATE_LIMIT_PER_SECOND="150", ESG_MAX_IN_FLIGHT="4")
        run_day()
        stats = sandbox.stats()
        expected = sandbox_expected_file(sandbox.data, DAY)
    assert decrypted_file(paths) == expected
    assert stats["token"]["requests"] >= 2  # tokens expired during the run and were renewed
    assert b"Failed" not in decrypted_file(paths)


def test_decrypted_file_parses_as_csv_with_one_row_per_active_account(job_environment):
    with SandboxServer(SandboxConfig(accounts=80, seed=2, partial_rate=0.2)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        active = [account_id for account_id, _ in sandbox.data.expected_active_accounts()]
    rows = parsed(decrypted_file(paths))
    assert [row[0] for row in rows] == sorted(active)
    assert all(len(row) == 10 for row in rows)
