"""esg-report keygen and decrypt: exit codes, one-line errors, private outputs and no partial plaintext.

The main paths run as the operator runs them, a process with environment variables. Each process pays for
importing Dagster (esg_assets.core.settings imports it), so the other error paths call ``main`` in-process
with the same environment and arguments.
"""

import io
import json
import os
import pwd
import stat
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from esg_assets.cli.report import main
from esg_assets.core.file_names import manifest_file_name
from esg_assets.core.ratings.ratings_csv import write_ratings_csv
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import add_key, generate_key_file, load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.manifest import Manifest
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.published_day import publish_day

DAY = date(2026, 11, 25)
ROWS = [
    (
        "A-1",
        "Acme, Inc.",
        Decimal("71.25"),
        Decimal("80"),
        Decimal("65.5"),
        Decimal("68.25"),
        "Environmental",
        Decimal("80"),
        date(2026, 11, 24),
        "Successful",
    ),
    ("A-2", "=HYPERLINK()", None, None, None, None, None, None, None, "Failed"),
]


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if not key.startswith("ESG_")}
    base["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def run_main(monkeypatch, capsysbinary):
    """``run_cli`` in-process: same arguments, environment and working directory, same result type."""

    def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
        for key in [key for key in os.environ if key.startswith("ESG_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(cwd)
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse exits on usage errors
            code = exit.code
        out, err = capsysbinary.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def assert_fails(result: subprocess.CompletedProcess, exit_code: int, message: str) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == exit_code, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert result.stdout == b""
    return stderr


@pytest.fixture
def setup(tmp_path):
    """A store holding the day's encrypted ratings file, its key file and the environment naming both."""
    key_file = tmp_path / "keys" / "esg.json"
    generate_key_file(key_file)
    store = LocalReportStore(tmp_path / "reports")
    plaintext = io.BytesIO()
    write_ratings_csv(ROWS, plaintext)
    publish_day(store, key_file_keyring(load_key_ring(key_file)), tmp_path / "audit", DAY, rows=ROWS)
    env = {
        "ESG_OUTPUT_URI": store.root.as_uri(),
        "ESG_ENCRYPTION_KEY_FILE": str(key_file),
        # decrypt denies everyone not on the allow-list and audits every attempt (test_security.py)
        "ESG_AUTHORIZED_READERS": pwd.getpwuid(os.getuid()).pw_name,
        "ESG_AUDIT_LOG_DIR": str(tmp_path / "audit"),
    }
    return env, store, key_file, plaintext.getvalue()


@pytest.mark.integration
def test_keygen_creates_a_private_key_file_and_prints_only_its_id(tmp_path):
    result = run_cli("keygen", "--output", "secrets/esg.json", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "secrets" / "esg.json"
    key_id = result.stdout.decode().strip()
    assert result.stdout.decode() == key_id + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key_ring(key_file).primary_id == key_id
    encoded_key = json.loads(key_file.read_text())["keys"][0]["key"]
    assert encoded_key.encode() not in result.stdout + result.stderr


@pytest.mark.unit
def test_keygen_refuses_to_replace_a_key_file(tmp_path, run_main):
    key_file = tmp_path / "esg.json"
    key_id = generate_key_file(key_file)
    assert_fails(run_main("keygen", "--output", "esg.json", env={}, cwd=tmp_path), 2, "already exists")
    assert load_key_ring(key_file).primary_id == key_id


@pytest.mark.unit
def test_keygen_rotate_adds_a_primary_key(tmp_path, run_main):
    key_file = tmp_path / "esg.json"
    first = generate_key_file(key_file)
    result = run_main("keygen", "--output", str(key_file), "--rotate", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ring = load_key_ring(key_file)
    assert ring.primary_id == result.stdout.decode().strip() != first
    assert ring.key_ids == (first, ring.primary_id)

    missing = run_main("keygen", "--output", "absent.json", "--rotate", env={}, cwd=tmp_path)
    assert_fails(missing, 2, "does not exist")


@pytest.mark.integration
def test_decrypt_to_a_file_after_rotation(setup, tmp_path):
    env, _, key_file, plaintext = setup
    add_key(key_file)  # the day's file was made with the older key, which the key file still holds
    (tmp_path / "out").mkdir()
    result = run_cli("decrypt", "--date", "2026-11-25", "--output", "out/ratings.csv", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "out" / "ratings.csv"
    assert output.read_bytes() == plaintext
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert os.listdir(output.parent) == ["ratings.csv"]


@pytest.mark.integration
def test_decrypt_to_stdout(setup, tmp_path):
    env, _, _, plaintext = setup
    result = run_cli("decrypt", "--date", "2026-11-25", "--output", "-", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == plaintext
    assert result.stdout.startswith(b"Account ID,Account Name,")


def ratings_path(store: LocalReportStore) -> Path:
    """Where the day's live ratings file is stored, as its manifest says."""
    manifest = Manifest.from_json((store.root / manifest_file_name(DAY)).read_bytes())
    return store.root / manifest.entry("ratings").path


def tamper(store: LocalReportStore) -> Path:
    path = ratings_path(store)
    altered = bytearray(path.read_bytes())
    altered[-20] ^= 0x01
    path.write_bytes(bytes(altered))
    return path


@pytest.mark.integration
def test_tampered_file_exits_1_and_leaves_no_output(setup, tmp_path):
    env, store, _, _ = setup
    tamper(store)
    result = run_cli("decrypt", "--date", "2026-11-25", "--output", "ratings.csv", env=env, cwd=tmp_path)
    assert_fails(result, 1, "authentication failed: the file was altered")
    assert not (tmp_path / "ratings.csv").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


@pytest.mark.unit
def test_tampered_file_leaves_an_existing_output_untouched(setup, tmp_path, run_main):
    env, store, _, _ = setup
    path = tamper(store)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "previous.csv").write_bytes(b"an earlier good export")
    result = run_main(
        "decrypt", "--date", "2026-11-25", "--output", "out/previous.csv", env=env, cwd=tmp_path
    )
    assert_fails(result, 1, f"refusing {path.as_uri()}: authentication failed")
    assert os.listdir(tmp_path / "out") == ["previous.csv"]
    assert (tmp_path / "out" / "previous.csv").read_bytes() == b"an earlier good export"


@pytest.mark.unit
def test_tampered_file_writes_nothing_to_stdout(setup, tmp_path, run_main):
    env, store, _, _ = setup
    tamper(store)
    # The file's last frame is altered, yet not one plaintext byte is written: all is verified first.
    result = run_main("decrypt", "--date", "2026-11-25", "--output", "-", env=env, cwd=tmp_path)
    assert_fails(result, 1, "authentication failed")


@pytest.mark.unit
def test_truncated_file_exits_1(setup, tmp_path, run_main):
    env, store, _, _ = setup
    path = ratings_path(store)
    path.write_bytes(path.read_bytes()[:60])
    result = run_main("decrypt", "--date", "2026-11-25", "--output", "out.csv", env=env, cwd=tmp_path)
    assert_fails(result, 1, "the file is truncated or not a valid encrypted message")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.unit
def test_no_file_for_that_date_exits_1(setup, tmp_path, run_main):
    env, store, _, _ = setup
    result = run_main("decrypt", "--date", "2026-11-24", "--output", "out.csv", env=env, cwd=tmp_path)
    expected = (
        f"no ratings file for 2026-11-24: {store.uri(manifest_file_name(date(2026, 11, 24)))} "
        "does not exist: no set of 2026-11-24 is published"
    )
    assert_fails(result, 1, expected)


@pytest.mark.integration
def test_missing_key_file_setting_exits_2(setup, tmp_path):
    env, _, _, _ = setup
    del env["ESG_ENCRYPTION_KEY_FILE"]
    result = run_cli("decrypt", "--date", "2026-11-25", "--output", "out.csv", env=env, cwd=tmp_path)
    assert_fails(result, 2, "ESG_ENCRYPTION_KEY_FILE is not set")


@pytest.mark.unit
def test_key_file_readable_by_others_exits_2(setup, tmp_path, run_main):
    env, _, key_file, _ = setup
    key_file.chmod(0o644)
    result = run_main("decrypt", "--date", "2026-11-25", "--output", "out.csv", env=env, cwd=tmp_path)
    assert_fails(result, 2, f"chmod 600 {key_file}")


@pytest.mark.unit
def test_key_file_without_the_file_key_exits_1(setup, tmp_path, run_main):
    env, _, _, _ = setup
    other = tmp_path / "other.json"
    generate_key_file(other)
    env = {**env, "ESG_ENCRYPTION_KEY_FILE": str(other)}
    result = run_main("decrypt", "--date", "2026-11-25", "--output", "out.csv", env=env, cwd=tmp_path)
    assert_fails(result, 1, f"none of the configured keys can decrypt it (key file {other}, keys k-")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["decrypt", "--date", "2026-13-01", "--output", "-"],
            "invalid date '2026-13-01': expected YYYY-MM-DD",
        ),
        (["decrypt", "--date", "20261125", "--output", "-"], "invalid date '20261125'"),
        (["decrypt", "--output", "-"], "the following arguments are required: --date"),
        (
            ["decrypt", "--date", "2026-11-25", "--output", "no/such/dir/out.csv"],
            "its directory does not exist",
        ),
        (["unknown"], "invalid choice: 'unknown'"),
    ],
)
def test_usage_errors_exit_2(setup, tmp_path, run_main, args, message):
    env, _, _, _ = setup
    assert_fails(run_main(*args, env=env, cwd=tmp_path), 2, message)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "s3://b/p",
            "Setting ESG_OUTPUT_URI must be a valid S3 location, s3://bucket/prefix "
            "(prefix parts of A-Z a-z 0-9 . _ -), got 's3://b/p'",
        ),
        (
            "ftp://host/dir",
            "Setting ESG_OUTPUT_URI must be file:///abs/dir, a directory path or s3://bucket/prefix, "
            "got 'ftp://host/dir'",
        ),
    ],
)
def test_unsupported_output_uri_exits_2(setup, tmp_path, run_main, uri, message):
    env, _, _, _ = setup
    result = run_main(
        "decrypt", "--date", "2026-11-25", "--output", "-", env={**env, "ESG_OUTPUT_URI": uri}, cwd=tmp_path
    )
    assert_fails(result, 2, message)
