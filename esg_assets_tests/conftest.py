"""Fixtures shared by the suite."""

import pytest

from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.sandbox.server import SandboxServer
from esg_assets_tests.support.project_logs import project_logs_in_tmp  # noqa: F401 (autouse: JSON logs in tmp_path)


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
        monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
        return {"output": tmp_path / "reports", "key_file": key_file, "audit": tmp_path / "audit"}

    return point_at
