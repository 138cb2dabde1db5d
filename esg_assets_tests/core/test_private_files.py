"""Nothing the job leaves on disk is readable by another local user, whatever umask it was started with:
the store, the warehouse and its spill and WAL files, the logs, the audit log, the key file and the Dagster
instance are 0600 files in 0700 directories. Checked by modes, then by reading everything as another OS
user."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from esg_assets.core.private_files import make_private, private_directory
from esg_assets_tests.support.paths import REPO_ROOT

DAY = "2026-11-20"
OTHER_USER = "nobody"


@pytest.fixture(scope="module")
def world_traversable_dir():
    """A directory any user may enter (pytest's own are 0700): what the job makes in it must hold alone."""
    base = Path(tempfile.mkdtemp(prefix="esg-private-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def day_run_under_open_umask(world_traversable_dir):
    """`make run`'s path (scripts/with_sandbox.py) for one day, under umask 022, everything in one dir.

    One day for the module: its tests only read it (as root, or as another user, who can write nothing in
    it)."""
    base = world_traversable_dir
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("ESG_", "DAGSTER_"))},
        "ESG_OUTPUT_URI": f"file://{base / 'reports'}",
        "ESG_WAREHOUSE_PATH": str(base / "warehouse" / "warehouse.duckdb"),
        "ESG_ENCRYPTION_KEY_FILE": str(base / "keys" / "esg-report.key"),
        "ESG_LOG_DIR": str(base / "log"),
        "ESG_AUDIT_LOG_DIR": str(base / "audit"),
        "DAGSTER_HOME": str(base / "dagster_home"),
        "ESG_RECONCILIATION_SAMPLE": "5",
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "with_sandbox.py"), "--partition", DAY, "run", "--",
         "--accounts", "60", "--seed", "3", "--latency-ms", "1"],
        env=env, cwd=base, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base, env


def everything_under(base: Path) -> list[Path]:
    return sorted(path for path in base.rglob("*") if not path.is_symlink())


@pytest.mark.e2e
def test_a_day_run_under_umask_022_leaves_only_0600_files_in_0700_directories(day_run_under_open_umask):
    base, _ = day_run_under_open_umask
    paths = everything_under(base)
    made = {path.relative_to(base).parts[0] for path in paths}
    assert {"reports", "warehouse", "keys", "log", "audit", "dagster_home"} <= made
    assert any(path.name == "warehouse.duckdb" for path in paths) and any(
        path.suffix == ".db" for path in paths
    )
    opened = [
        f"{path.relative_to(base)} {stat.filemode(path.stat().st_mode)}"
        for path in paths
        if path.stat().st_mode & 0o077
    ]
    assert opened == []


@pytest.mark.e2e
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to act as another user"
)
def test_another_os_user_reads_nothing_of_the_day_and_cannot_decrypt(day_run_under_open_umask):
    base, env = day_run_under_open_umask
    as_other = ["setpriv", f"--reuid={OTHER_USER}", "--regid=nogroup", "--clear-groups", "--"]
    readable = []
    for path in everything_under(base):
        command = ["ls", str(path)] if path.is_dir() else ["head", "-c", "1", str(path)]
        if subprocess.run(as_other + command, capture_output=True, timeout=30).returncode == 0:
            readable.append(str(path.relative_to(base)))
    assert readable == []
    # Whatever it sets in its environment, the other user's own program finds nothing to decrypt with.
    hostile = {**env, "ESG_AUTHORIZED_READERS": OTHER_USER, "ESG_AUDIT_LOG_DIR": "/tmp", "SUDO_USER": "root"}
    result = subprocess.run(
        as_other + ["/usr/bin/python3", "-c",
                    "import sys, pathlib; pathlib.Path(sys.argv[1]).read_bytes()",
                    hostile["ESG_ENCRYPTION_KEY_FILE"]],
        env=hostile, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "PermissionError" in result.stderr


@pytest.mark.unit
def test_private_directory_makes_each_new_level_0700_and_leaves_existing_ones(tmp_path, monkeypatch):
    previous = os.umask(0o022)
    try:
        (tmp_path / "existing").mkdir(mode=0o755)
        os.chmod(tmp_path / "existing", 0o755)
        made = tmp_path / "existing" / "a" / "b"
        assert private_directory(made) == [tmp_path / "existing" / "a", made] and made.is_dir()
        assert private_directory(made) == []  # nothing new
        assert stat.S_IMODE((tmp_path / "existing").stat().st_mode) == 0o755  # not ours to change
        assert stat.S_IMODE((tmp_path / "existing" / "a").stat().st_mode) == 0o700
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        old = tmp_path / "old.log"
        old.write_text("made before the policy")
        os.chmod(old, 0o644)
        make_private(old)
        assert stat.S_IMODE(old.stat().st_mode) == 0o600
        make_private(tmp_path / "missing")  # nothing to do
    finally:
        os.umask(previous)


def _as_other_user_python() -> list[str] | None:
    """The other user's way to run this checkout: Debian's python3 on the venv's packages, if readable."""
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"), None)
    if site is None or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists():
        return None
    command = ["setpriv", f"--reuid={OTHER_USER}", "--regid=nogroup", "--clear-groups", "--", "env",
               f"PYTHONPATH={REPO_ROOT}:{site}", "MPLCONFIGDIR=/tmp", "/usr/bin/python3"]  # fmt: skip
    probe = subprocess.run([*command, "-c", "import esg_assets.cli.report"], capture_output=True, timeout=120)
    return command if probe.returncode == 0 else None


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_esg_report_decrypt_as_another_user_with_any_environment_fails(day_run_under_open_umask):
    base, env = day_run_under_open_umask
    python = _as_other_user_python()
    if python is None:
        pytest.skip("this checkout or its venv is not readable by another user")
    own_audit = Path(tempfile.mkdtemp(prefix="esg-other-audit-", dir="/tmp"))
    os.chmod(own_audit, 0o777)
    hostile = {
        **env,
        "ESG_AUTHORIZED_READERS": OTHER_USER,  # they name themselves a reader
        "ESG_AUDIT_LOG_DIR": str(own_audit),  # and keep the record of their read to themselves
        "SUDO_USER": "root",
    }
    try:
        result = subprocess.run(
            [*python, "-m", "esg_assets.cli.report", "decrypt", "--date", DAY, "--output", "-"],
            env=hostile, capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        shutil.rmtree(own_audit, ignore_errors=True)
    assert result.returncode != 0 and result.stdout == b""
    assert b"Traceback" not in result.stderr, result.stderr.decode()[-2000:]
    assert b"Permission denied" in result.stderr
