"""The whole daily graph against the sandbox: the decrypted file is byte for byte what the rules prescribe."""

import csv
import io
from datetime import date

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from esg_assets.assets.active_accounts import active_accounts
from esg_assets.assets.daily_summary import daily_summary
from esg_assets.assets.esg_ratings import esg_ratings
from esg_assets.assets.ratings_file import ratings_file
from esg_assets.assets.run_history import run_history
from esg_assets.crypto.keys import generate_key_file, load_key_ring
from esg_assets.crypto.stream_cipher import decrypt_stream
from esg_assets.resources.from_env import resources_from_env
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets.storage.file_names import ratings_file_name
from esg_assets.storage.report_store import report_store_for
from esg_assets_tests.expected_file import sandbox_expected_file

DAY = date(2026, 11, 24)
ALL_ASSETS = [active_accounts, esg_ratings, ratings_file, daily_summary, run_history]


@pytest.fixture
def job_environment(monkeypatch, tmp_path):
    """Settings for a job on loopback with its own warehouse, output directory and key."""

    def point_at(sandbox: SandboxServer, **overrides: str) -> dict:
        for name, value in {**sandbox.job_environment(), **overrides}.items():
            monkeypatch.setenv(name, value)
        key_file = tmp_path / "keys" / "esg.key"
        if not key_file.exists():
            generate_key_file(key_file)
        monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", str(key_file))
        monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{tmp_path / 'reports'}")
        monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
        return {"output": tmp_path / "reports", "key_file": key_file}

    return point_at


def run_day(day: date = DAY, assets=ALL_ASSETS, run_config=None):
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            assets,
            partition_key=day.isoformat(),
            resources=resources_from_env(),
            instance=instance,
            run_config=run_config,
        )
    assert result.success
    return result


def decrypted_file(paths: dict, day: date = DAY) -> bytes:
    store = report_store_for(f"file://{paths['output']}")
    with store.open(ratings_file_name(day)) as encrypted:
        return b"".join(decrypt_stream(encrypted, load_key_ring(paths["key_file"])))


def parsed(content: bytes) -> list[list[str]]:
    """The data rows of a decrypted file (header dropped), read by Python's csv module."""
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))[1:]


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
    assert {row[-1] for row in rows} == {"Successful", "Partial", "Failed"}  # the sandbox exercised every rule

    # Limits equal to the configured ones: no 429 of the job's own making.
    assert stats["esg"]["limited"] == 0
    summary = result.asset_materializations_for_node("daily_summary")[0].metadata
    assert summary["total_accounts"].value == len(rows)
    assert (paths["output"] / "FirmESGSummary_20261124.md").exists()
    assert not list(paths["output"].glob("*.csv"))  # no plaintext copy left beside the encrypted file


def test_rerunning_a_day_replaces_its_file_and_adds_a_history_row(job_environment):
    with SandboxServer(SandboxConfig(accounts=60, seed=9, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        first = decrypted_file(paths)
        run_day()
        second = decrypted_file(paths)
    assert first == second
    assert sorted(p.name for p in paths["output"].iterdir()) == [
        "FirmESGRatings_20261124.csv.enc",
        "FirmESGSummary_20261124.json",
        "FirmESGSummary_20261124.md",
    ]
    with duckdb.connect(str(paths["output"].parent / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.execute(
            "SELECT accounts, successful, api_requests FROM run_history ORDER BY finished_at"
        ).fetchall()
    # The second run resumed: every account already had a final result, so it asked the API for nothing.
    assert rows == [(60, 60, 60), (60, 60, 0)]


def test_token_revoked_mid_run_is_renewed_and_the_run_completes(job_environment):
    with SandboxServer(SandboxConfig(accounts=150, seed=4, token_ttl=0.5, latency_ms=5, ams_noise=False)) as sandbox:
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
