"""Security: damaged ciphertexts fail `esg-report decrypt` clearly with a non-zero exit; hostile ids and dates
cannot write outside the store; a reader not on the allow-list is denied and audited; and no plaintext is left
in the output location or the temp directory after a run, even one killed with SIGKILL while it writes."""

import hashlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from esg_assets.cli.common import caller_of
from esg_assets.cli.report import main
from esg_assets.core.file_names import (
    check_file_name,
    errors_file_name,
    manifest_file_name,
    ratings_file_name,
)
from esg_assets.core.partitions import partition_day
from esg_assets.lib.access.caller import current_caller
from esg_assets.lib.access.readers import AuthorizedReaders
from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.decrypting import MARKER, ME, audit
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import DAY, run_day
from esg_assets_tests.support.warehouses import warehouse_at


def frames(message: bytes) -> tuple[int, int, int]:
    """Where the message's body starts, how long each of its whole frames is, and how many frames it has."""
    stream = io.BytesIO(message)
    header, raw_header = deserialize_header(stream)
    algorithm = header.algorithm
    body = len(raw_header) + algorithm.auth_len  # the header, then its authentication tag
    # Sequence number, IV, content, tag.
    frame = 4 + algorithm.iv_len + header.frame_length + algorithm.auth_len
    return body, frame, (len(message) - body) // frame


def damaged(kind: str, original: bytes) -> bytes:
    body, frame, count = frames(original)
    assert count >= 3, "the ratings file should have several whole frames"
    if kind == "tampered":
        altered = bytearray(original)
        altered[body + frame + 10] ^= 0x40  # inside the second frame's content
        return bytes(altered)
    if kind == "truncated":
        return original[: body + 2 * frame]  # cut exactly between two frames
    if kind == "reordered":
        first, second = original[body : body + frame], original[body + frame : body + 2 * frame]
        return original[:body] + second + first + original[body + 2 * frame :]
    raise ValueError(kind)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("tampered", "authentication failed: the file was altered (or cut short)"),
        ("truncated", "the file is truncated or not a valid encrypted message"),
        ("reordered", "Malformed message: frames out of order"),
    ],
)
@pytest.mark.parametrize("output", ["out.csv", "-"])
def test_a_damaged_file_fails_clearly_leaves_no_plaintext_and_is_audited(
    decryptable_day, decrypt, tmp_path, kind, message, output
):
    path, env = decryptable_day
    path.write_bytes(damaged(kind, path.read_bytes()))
    code, out, err = decrypt(env, output)
    assert code == 1 and message in err and "Traceback" not in err
    assert out == b"" and not (tmp_path / "out.csv").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".out.csv")]
    record = audit(env)[-1]
    assert (record["action"], record["outcome"], record["user"]) == ("decrypt", "failed", ME)
    assert message in record["detail"]


@pytest.mark.unit
def test_a_header_with_a_data_key_provider_id_that_is_not_utf8_fails_clearly_and_is_audited(
    decryptable_day, decrypt, tmp_path
):
    path, env = decryptable_day
    original = path.read_bytes()
    altered = bytearray(original)
    altered[original.index(b"esg-ratings")] ^= 0x80  # the header's data key: its provider id
    path.write_bytes(bytes(altered))
    code, out, err = decrypt(env)
    assert code == 1 and "Traceback" not in err
    assert out == b"" and not (tmp_path / "out.csv").exists()
    assert audit(env)[-1]["outcome"] == "failed"


@pytest.mark.integration
def test_the_wrong_key_fails_as_a_process_with_a_clear_message(decryptable_day, tmp_path):
    _, env = decryptable_day
    generate_key_file(tmp_path / "other.key")
    command = ["decrypt", "--date", DAY.isoformat(), "--output", "out.csv"]
    result = subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", *command],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ESG_")}, **env,
             "ESG_ENCRYPTION_KEY_FILE": str(tmp_path / "other.key"), "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    # The day's manifest is sealed with the day's key: the wrong key fails there, before any file is read.
    assert "its seal does not hold: none of the configured keys can decrypt it" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()


@pytest.mark.unit
@pytest.mark.parametrize("output", ["out.csv", "-"])
def test_another_file_of_the_set_in_place_of_the_ratings_file_is_refused_naming_what_differs(
    decryptable_day, decrypt, tmp_path, output
):
    # A valid message under the same key, but the error log: its encryption context says so.
    path, env = decryptable_day
    path.write_bytes((path.parent / errors_file_name(DAY)).read_bytes())
    code, out, err = decrypt(env, output)
    assert code == 1 and "Traceback" not in err
    assert "its file_name is 'FirmESGRatings_20261120_errors.csv', not 'FirmESGRatings_20261120.csv'" in err
    assert "its kind is 'errors', not 'ratings'" in err
    assert out == b"" and not (tmp_path / "out.csv").exists()
    assert audit(env)[-1]["outcome"] == "failed"


@pytest.mark.unit
def test_a_reader_not_on_the_allow_list_is_denied_and_audited(decryptable_day, decrypt, tmp_path):
    _, env = decryptable_day
    code, out, err = decrypt({**env, "ESG_AUTHORIZED_READERS": "someone-else, group:no-such-group"})
    assert code == 3
    assert (
        f"{ME} may not decrypt the ratings file for {DAY}: user {ME} is not in ESG_AUTHORIZED_READERS" in err
    )
    assert out == b"" and not (tmp_path / "out.csv").exists()
    record = audit(env)[-1]
    assert (record["action"], record["outcome"], record["user"], record["file"], record["sha256"]) == (
        "decrypt", "denied", ME, ratings_file_name(DAY), None
    )  # fmt: skip
    code, _, err = decrypt({**env, "ESG_AUTHORIZED_READERS": ""})
    assert code == 3 and "ESG_AUTHORIZED_READERS is empty, so nobody may read the files" in err
    assert audit(env)[-1]["outcome"] == "denied"


@pytest.mark.unit
def test_a_reader_allowed_by_group_reads_and_the_read_is_audited_with_the_files_hash(
    decryptable_day, decrypt, tmp_path
):
    path, env = decryptable_day
    group = sorted(current_caller().groups)[0]
    code, _, err = decrypt({**env, "ESG_AUTHORIZED_READERS": f"group:{group}"})
    assert code == 0, err
    assert MARKER.encode() in (tmp_path / "out.csv").read_bytes()
    record = audit(env)[-1]
    assert (record["outcome"], record["sha256"]) == ("allowed", hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.unit
def test_sudo_user_is_believed_only_for_the_service_account(tmp_path, monkeypatch):
    service_dir = tmp_path / "audit"
    service_dir.mkdir()
    monkeypatch.setenv("SUDO_USER", "nobody")
    assert caller_of(service_dir).user == "nobody"  # run as the owner of the audit log: through sudo
    assert caller_of(service_dir).os_user == ME
    assert caller_of(None).user == ME  # anyone else setting SUDO_USER is judged as themselves
    assert (
        current_caller(service_dir).user == ME
    )  # the job's own runs: the variable is not read below the CLI
    readers = AuthorizedReaders.parse("alice,group:esg-readers")
    assert readers.users == {"alice"} and readers.groups == {"esg-readers"}
    with pytest.raises(
        ValueError, match="ESG_AUTHORIZED_READERS: 'bad name' is not a user name or group:NAME"
    ):
        AuthorizedReaders.parse("alice, bad name")


HOSTILE = ["../x", "../../etc/passwd", "/etc/passwd", "a/../../x", "a/b/c/d", "a//b", "a/b/", "a/./b", "..",
           ".hidden", "x\\y", "x\x00y", ""]  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize("name", HOSTILE)
def test_no_name_writes_outside_the_store(tmp_path, name):
    store = LocalReportStore(tmp_path / "store" / "reports")
    with pytest.raises(ValueError, match="invalid (file|stored) name"), store.publish(name) as sink:
        sink.write(b"x")
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.unit
def test_a_nested_stored_name_stays_inside_the_store(tmp_path):
    # The sets' folders (<versions folder>/<version>/<file>) are the one kind of "/" a stored name may hold.
    store = LocalReportStore(tmp_path / "store" / "reports")
    with store.publish("a/b/c") as sink:
        sink.write(b"x")
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == [store.root / "a" / "b" / "c"]


@pytest.mark.unit
@pytest.mark.parametrize(
    "text", ["../2026-11-20", "2026-11-20/../../x", "2026-11-20\x00", "20261120", "2026-W47-5"]
)
def test_hostile_dates_never_become_file_names(text, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
    with pytest.raises(SystemExit) as exit_info:
        main(["decrypt", "--date", text, "--output", "-"])
    assert exit_info.value.code == 2 and "invalid date" in capsys.readouterr().err
    # A partition key is a date or nothing, and a date only ever makes a plain name.
    try:
        day = partition_day(text)
    except ValueError:
        return
    assert check_file_name(ratings_file_name(day)) == f"FirmESGRatings_{day:%Y%m%d}.csv.enc"


@pytest.mark.unit
def test_rerun_refuses_account_ids_that_could_be_paths(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rerun", "--date", DAY.isoformat(), "--accounts", "ACC-1,../../etc/passwd"])
    assert exit_info.value.code == 2 and "expected comma-separated account ids" in capsys.readouterr().err


def plaintext_in(*roots: Path) -> list[str]:
    """Files under ``roots`` holding the CSV header or a marked account name."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                if MARKER.encode() in content or b"Account ID,Account Name" in content:
                    found.append(str(path))
    return found


@pytest.mark.e2e
def test_a_finished_run_leaves_no_plaintext_in_the_output_or_temp_directory(
    job_environment, tmp_path, monkeypatch
):
    temp = tmp_path / "run-tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # what tempfile.gettempdir() returns for this run
    with SandboxServer(SandboxConfig(accounts=40, seed=2)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        names = [name for _, name in sandbox.data.expected_active_accounts()]
    for root in (paths["output"], temp):
        for path in root.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert b"Account ID,Account Name" not in content, path
                assert not [name for name in names if name.encode() in content], path


def seed_warehouse(path: Path, day: date, accounts: int) -> None:
    """The day's snapshot and ratings, straight into DuckDB: enough rows for the file to take seconds."""
    with warehouse_at(str(path)).connect() as connection:
        connection.execute(
            f"""
            INSERT INTO account_snapshots
            SELECT $day, printf('ACC-%07d', i),
                   printf('{MARKER} %s, Pension "Trust" %d', repeat('Harbor ', 20), i), $now, $now
            FROM range(1, $n + 1) t(i)
            """,
            {"day": day, "n": accounts, "now": datetime(2026, 11, 20, 11, tzinfo=timezone.utc)},
        )
        connection.execute(
            """
            INSERT INTO esg_ratings
            SELECT $day, printf('ACC-%07d', i), 71.25, 68.40, 74.10, 71.90, 'Social', 74.10,
                   DATE '2026-11-19', 'Successful', NULL, 1, 200, NULL, false, $now, 'seed'
            FROM range(1, $n + 1) t(i)
            """,
            {"day": day, "n": accounts, "now": datetime(2026, 11, 20, 11, tzinfo=timezone.utc)},
        )


@pytest.mark.e2e
def test_a_run_killed_while_writing_leaves_no_plaintext(job_environment, tmp_path):
    temp, home = tmp_path / "run-tmp", tmp_path / "dagster_home"
    temp.mkdir()
    home.mkdir()
    with SandboxServer(SandboxConfig(accounts=1)) as sandbox:  # the API is not reached before the kill
        paths = job_environment(sandbox)
        seed_warehouse(tmp_path / "warehouse.duckdb", DAY, accounts=150_000)
        environment = {
            **os.environ,
            "TMPDIR": str(temp),
            "DAGSTER_HOME": str(home),
            "PYTHONPATH": str(REPO_ROOT),
        }
        command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "esg_assets.definitions",
                   "--select", "ratings_file,daily_summary", "--partition", DAY.isoformat()]  # fmt: skip
        job = subprocess.Popen(command, env=environment, cwd=REPO_ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            in_progress = _wait_for_partial_file(paths["output"], job)
            os.killpg(job.pid, signal.SIGKILL)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=30)
            job.stderr.close()
    assert job.returncode == -signal.SIGKILL
    assert not (paths["output"] / manifest_file_name(DAY)).exists()  # killed midway: no set was committed
    assert in_progress.exists() and in_progress.stat().st_size > 0  # the partial file is ciphertext only
    assert plaintext_in(paths["output"], temp, home) == []


def _wait_for_partial_file(output: Path, job: subprocess.Popen) -> Path:
    """The ratings file being written (its hidden temporary name, in its set's folder), once it holds data."""
    while job.poll() is None:
        for path in output.rglob(f".{ratings_file_name(DAY)}.*.tmp") if output.exists() else []:
            if path.stat().st_size > 1024 * 1024:
                return path
        time.sleep(0.005)
    raise AssertionError(f"the run ended before the kill: {job.stderr.read().decode()[-2000:]}")
