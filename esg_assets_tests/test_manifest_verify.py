"""The manifest written after the day's files, and `esg-report verify`, which passes on a fresh publication
and names what is wrong after any change: the file, expected and actual hash, missing, undecryptable, rows."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import date

import pytest

from esg_assets.cli.report import main
from esg_assets.crypto.keys import generate_key_file, load_key_ring
from esg_assets.crypto.stream_cipher import decrypt_stream
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets.storage.file_names import errors_file_name, manifest_file_name, ratings_file_name
from esg_assets.storage.local import LocalReportStore
from esg_assets.storage.manifest import RATINGS_SCHEMA_VERSION, Manifest
from esg_assets.storage.verification import verify_day
from esg_assets_tests.pipeline_runs import DAY, run_day
from esg_assets_tests.published_day import publish_day

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATINGS, ERRORS, MANIFEST = ratings_file_name(DAY), errors_file_name(DAY), manifest_file_name(DAY)


@pytest.fixture
def day(tmp_path):
    """A day published with its manifest, and what reading it needs."""
    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    store = LocalReportStore(tmp_path / "reports")
    manifest = publish_day(store, load_key_ring(key_file), tmp_path / "audit", DAY)
    env = {
        "ESG_OUTPUT_URI": store.root.as_uri(),
        "ESG_ENCRYPTION_KEY_FILE": str(key_file),
        "ESG_AUDIT_LOG_DIR": str(tmp_path / "audit"),
    }
    return store, load_key_ring(key_file), manifest, env


def problems(day_files) -> list[str]:
    store, keys, _, _ = day_files
    return verify_day(store, keys, DAY).problems


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_describes_each_file_exactly(day):
    store, keys, manifest, _ = day
    stored = Manifest.from_json((store.root / MANIFEST).read_bytes())
    assert stored == manifest
    assert (stored.partition, stored.run_id, stored.schema_version) == (DAY, "run-1", RATINGS_SCHEMA_VERSION)
    assert stored.rows_by_status == {"Successful": 240, "Partial": 0, "Failed": 60}
    assert stored.failure_rate == 0.2 and stored.key_id == keys.primary_id
    for entry in stored.files:
        path = store.root / entry.name
        plaintext = b"".join(decrypt_stream(path.open("rb"), keys))
        assert (entry.ciphertext_sha256, entry.ciphertext_bytes) == (sha256(path), path.stat().st_size)
        assert (entry.plaintext_sha256, entry.plaintext_bytes) == (
            hashlib.sha256(plaintext).hexdigest(),
            len(plaintext),
        )
        assert entry.key_id == keys.primary_id
    assert [(entry.name, entry.kind, entry.rows) for entry in stored.files] == [
        (RATINGS, "ratings", 300), (ERRORS, "errors", 60)
    ]  # fmt: skip
    assert problems(day) == []


def test_any_changed_byte_of_a_file_is_named_with_both_hashes(day):
    store, _, manifest, _ = day
    path = store.root / RATINGS
    original = path.read_bytes()
    expected = manifest.files[0].ciphertext_sha256
    for position in [0, 8, 20, 60, 100, len(original) // 2, len(original) - 1]:
        altered = bytearray(original)
        altered[position] ^= 0x01
        path.write_bytes(bytes(altered))
        found = problems(day)
        assert (
            f"{RATINGS}: ciphertext SHA-256 mismatch: manifest says {expected} ({len(original)} bytes), "
            f"file has {hashlib.sha256(altered).hexdigest()} ({len(original)} bytes)"
        ) in found, position
        assert any(problem.startswith(f"{RATINGS}: undecryptable: ") for problem in found), position
    path.write_bytes(original)
    assert problems(day) == []


def test_a_missing_file_a_missing_manifest_and_an_unlisted_file_are_named(day):
    store, _, _, _ = day
    (store.root / ERRORS).unlink()
    (store.root / "FirmESGRatings_20261120_extra.csv.enc").write_bytes(b"?")
    assert problems(day) == [
        f"{ERRORS}: missing ({store.uri(ERRORS)} does not exist)",
        "FirmESGRatings_20261120_extra.csv.enc: in the store but not in the manifest",
    ]
    (store.root / MANIFEST).unlink()
    assert problems(day) == [f"{MANIFEST}: missing ({store.uri(MANIFEST)} does not exist)"]


def test_an_edited_manifest_is_caught_by_the_files(day):
    store, _, manifest, _ = day
    document = json.loads((store.root / MANIFEST).read_bytes())
    document["files"][0]["rows"] = 299
    document["files"][1]["plaintext_sha256"] = "0" * 64
    document["rows_by_status"]["Failed"] = 61
    (store.root / MANIFEST).write_text(json.dumps(document))
    found = problems(day)
    assert f"{RATINGS}: row count mismatch: manifest says 299, file has 300" in found
    assert f"{RATINGS}: Failed rows mismatch: manifest says 61, file has 60" in found
    assert any(
        problem.startswith(f"{ERRORS}: plaintext SHA-256 mismatch: manifest says {'0' * 64}")
        for problem in found
    )
    (store.root / MANIFEST).write_text("{not json")
    assert problems(day)[0].startswith(f"{MANIFEST}: malformed manifest")


def test_a_file_the_key_cannot_open_is_undecryptable(day, tmp_path):
    store, _, _, _ = day
    generate_key_file(tmp_path / "other.key")
    found = verify_day(store, load_key_ring(tmp_path / "other.key"), DAY).problems
    assert found[0].startswith(f"{RATINGS}: undecryptable: unknown key id")
    assert not any("ciphertext SHA-256 mismatch" in problem for problem in found)  # the file itself is intact


def test_cli_verify_passes_then_fails_precisely_and_is_audited(day, tmp_path, monkeypatch, capsys):
    store, _, manifest, env = day
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "--date", DAY.isoformat()]) == 0
    assert capsys.readouterr().out == f"ok {DAY}: {RATINGS}, {ERRORS} match the manifest\n"
    path = store.root / ERRORS
    path.write_bytes(path.read_bytes()[:-1])
    # A process, as an operator runs it: exit status and output.
    result = subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", "verify", "--date", DAY.isoformat()],
        env={**os.environ, "PYTHONPATH": REPO_ROOT}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (
        f"FAIL {ERRORS}: ciphertext SHA-256 mismatch: manifest says {manifest.files[1].ciphertext_sha256}"
        in result.stdout
    )
    assert f"FAIL {ERRORS}: undecryptable: " in result.stdout
    actions = [(record["action"], record["outcome"]) for record in _audit(tmp_path)]
    assert actions[-2:] == [("verify", "done"), ("verify", "failed")]


def test_the_daily_run_writes_the_manifest_last_and_audits_each_publication(job_environment, tmp_path):
    with SandboxServer(SandboxConfig(accounts=50, seed=5, failure_rate=0.1)) as sandbox:
        paths = job_environment(sandbox)
        result = run_day()
    store = LocalReportStore(paths["output"])
    manifest = Manifest.from_json((paths["output"] / MANIFEST).read_bytes())
    assert (
        manifest.run_id == result.run_id and sum(manifest.rows_by_status.values()) == manifest.files[0].rows
    )
    # Written last: no file of the day is newer than the manifest.
    newest = max(path.stat().st_mtime_ns for path in paths["output"].glob("FirmESGRatings_20261120*"))
    assert (paths["output"] / MANIFEST).stat().st_mtime_ns == newest
    assert verify_day(store, load_key_ring(paths["key_file"]), DAY).problems == []
    published = [(r["action"], r["file"]) for r in _audit(tmp_path) if r["run_id"] == result.run_id]
    assert published == [("publish", RATINGS), ("publish", ERRORS), ("publish", MANIFEST)]
    metadata = result.asset_materializations_for_node("ratings_file")[0].metadata
    assert metadata["sha256"].value == manifest.files[0].ciphertext_sha256
    last = list(_audit(tmp_path))[-1]
    assert metadata["audit_checkpoint"].value == f"{last['seq']}:{last['hash']}"


def _audit(tmp_path):
    with (tmp_path / "audit" / "audit.jsonl").open() as log:
        return [json.loads(line) for line in log]


def test_manifest_of_another_day_is_named(day):
    store, keys, _, _ = day
    other = date(2026, 11, 21)
    (store.root / manifest_file_name(other)).write_bytes((store.root / MANIFEST).read_bytes())
    assert (
        verify_day(store, keys, other).problems[0]
        == f"{manifest_file_name(other)}: describes {DAY}, not {other}"
    )
