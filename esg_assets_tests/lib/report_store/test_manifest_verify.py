"""The day's sealed manifest and the set it commits, and `esg-report verify` and `decrypt`, which pass on a
fresh publication and refuse, naming what does not match, a changed byte, a swapped day, an errors file under
the ratings name, an edited manifest, a missing or stray file."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date

import pytest

from esg_assets.cli.report import main
from esg_assets.core.file_names import (
    errors_file_name,
    manifest_file_name,
    ratings_file_name,
    summary_file_name,
    versions_folder,
)
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import generate_key_file, load_key_ring
from esg_assets.lib.crypto.messages import decrypted_chunks
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.manifest import RATINGS_SCHEMA_VERSION, Manifest
from esg_assets.lib.report_store.verification import verify_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import DAY, materialized, run_day
from esg_assets_tests.support.published_day import publish_day

NEXT_DAY = date(2026, 11, 21)
RATINGS, ERRORS, MANIFEST = ratings_file_name(DAY), errors_file_name(DAY), manifest_file_name(DAY)


@pytest.fixture
def day(tmp_path):
    """Two days published, each with its sealed manifest, and what reading them needs."""
    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    store = LocalReportStore(tmp_path / "reports")
    keys = key_file_keyring(load_key_ring(key_file))
    manifest = publish_day(store, keys, tmp_path / "audit", DAY)
    publish_day(store, keys, tmp_path / "audit", NEXT_DAY, accounts=200, run_id="run-2")
    env = {
        "ESG_OUTPUT_URI": store.root.as_uri(),
        "ESG_ENCRYPTION_KEY_FILE": str(key_file),
        "ESG_AUDIT_LOG_DIR": str(tmp_path / "audit"),
        "ESG_AUTHORIZED_READERS": "root,esg-job," + os.environ.get("USER", "root"),
    }
    return store, keys, manifest, env


def problems(day_files, which: date = DAY) -> list[str]:
    store, keys, _, _ = day_files
    return verify_day(store, keys, which).problems


def path_of(store, manifest: Manifest, kind: str):
    return store.root / manifest.entry(kind).path


def live(store, which: date = DAY) -> Manifest:
    return Manifest.from_json((store.root / manifest_file_name(which)).read_bytes())


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decrypt_cli(day_files, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    for name, value in day_files[3].items():
        monkeypatch.setenv(name, value)
    code = main(["decrypt", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.unit
def test_manifest_describes_each_file_of_the_set_exactly(day):
    store, keys, manifest, _ = day
    stored = live(store)
    assert stored == manifest
    assert (stored.partition, stored.run_id, stored.schema_version) == (DAY, "run-1", RATINGS_SCHEMA_VERSION)
    assert stored.rows_by_status == {"Successful": 240, "Partial": 0, "Failed": 60}
    assert stored.failure_rate == 0.2 and stored.key_id == keys.primary_key_id
    assert [(entry.name, entry.kind, entry.rows) for entry in stored.files] == [
        (RATINGS, "ratings", 300), (ERRORS, "errors", 60), (summary_file_name(DAY, "json"), "summary", 0)
    ]  # fmt: skip
    for entry in stored.files:
        path = store.root / entry.path
        assert entry.path == f"{versions_folder(DAY)}/{stored.version}/{entry.name}"
        assert (entry.stored_sha256, entry.stored_bytes) == (sha256(path), path.stat().st_size)
        if entry.encrypted:
            with path.open("rb") as source:
                plaintext = b"".join(decrypted_chunks(source, keys, stored.file_identity(entry)))
            assert entry.key_id == keys.primary_key_id
        else:
            plaintext = path.read_bytes()
        assert (entry.plaintext_sha256, entry.plaintext_bytes) == (
            hashlib.sha256(plaintext).hexdigest(),
            len(plaintext),
        )
    # Only the manifest lives at the top: a reader follows it, never a name it guesses.
    assert sorted(p.name for p in store.root.iterdir() if p.name.startswith("FirmESGRatings_20261120")) == [
        MANIFEST, versions_folder(DAY)
    ]  # fmt: skip
    assert problems(day) == [] and problems(day, NEXT_DAY) == []


@pytest.mark.unit
def test_any_changed_byte_of_a_file_is_named_with_both_hashes(day):
    store, _, manifest, _ = day
    path = path_of(store, manifest, "ratings")
    original = path.read_bytes()
    expected = manifest.entry("ratings").stored_sha256
    for position in [0, 8, 20, 60, 100, len(original) // 2, len(original) - 1]:
        altered = bytearray(original)
        altered[position] ^= 0x01
        path.write_bytes(bytes(altered))
        found = problems(day)
        assert (
            f"{RATINGS}: stored SHA-256 mismatch: manifest says {expected} ({len(original)} bytes), "
            f"file has {hashlib.sha256(altered).hexdigest()} ({len(original)} bytes)"
        ) in found, position
        assert any(problem.startswith(f"{RATINGS}: undecryptable: ") for problem in found), position
    path.write_bytes(original)
    assert problems(day) == []


def swap_ratings_files(store, manifest: Manifest):
    """Exchange the stored ratings files of DAY and NEXT_DAY; return DAY's path."""
    ours, theirs = path_of(store, manifest, "ratings"), path_of(store, live(store, NEXT_DAY), "ratings")
    swap = ours.read_bytes()
    ours.write_bytes(theirs.read_bytes())
    theirs.write_bytes(swap)
    return ours


@pytest.mark.unit
def test_swapped_days_are_refused_by_verify_and_decrypt_naming_the_day(day, monkeypatch, capsys):
    store, _, manifest, _ = day
    swap_ratings_files(store, manifest)
    found = problems(day)
    assert any(
        p.startswith(
            f"{RATINGS}: undecryptable: this is not FirmESGRatings_20261120.csv of 2026-11-20 (ratings)"
        )
        and "its file_name is 'FirmESGRatings_20261121.csv'" in p
        and "its partition_day is '2026-11-21', not '2026-11-20'" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{ratings_file_name(NEXT_DAY)}: undecryptable: ") for p in problems(day, NEXT_DAY)
    )
    code, out, err = decrypt_cli(day, monkeypatch, capsys, "--date", DAY.isoformat(), "--output", "-")
    assert code == 1 and out == ""
    assert "refusing" in err and "its partition_day is '2026-11-21', not '2026-11-20'" in err


@pytest.mark.unit
def test_swapped_days_with_manifests_edited_to_match_are_refused_as_edited(day, monkeypatch, capsys):
    """The insider's full swap: files exchanged and each manifest's hashes rewritten to the other file's."""
    store, _, manifest, _ = day
    ours = swap_ratings_files(store, manifest)
    document = json.loads((store.root / MANIFEST).read_bytes())
    document["files"][0]["stored_sha256"] = sha256(ours)
    document["files"][0]["stored_bytes"] = ours.stat().st_size
    (store.root / MANIFEST).write_text(json.dumps(document))
    assert problems(day) == [
        f"{MANIFEST} was edited after it was sealed: its content does not match its seal"
    ]
    code, out, err = decrypt_cli(day, monkeypatch, capsys, "--date", DAY.isoformat(), "--output", "-")
    assert code == 1 and out == "" and "was edited after it was sealed" in err


@pytest.mark.unit
def test_another_days_manifest_under_this_days_name_is_refused(day, monkeypatch, capsys):
    store, _, _, _ = day
    (store.root / MANIFEST).write_bytes((store.root / manifest_file_name(NEXT_DAY)).read_bytes())
    assert problems(day) == [f"{MANIFEST} describes {NEXT_DAY}, not {DAY}"]
    # Its day rewritten too: the seal is bound to the other day's manifest name and date.
    document = json.loads((store.root / MANIFEST).read_bytes())
    document["partition"] = DAY.isoformat()
    (store.root / MANIFEST).write_text(json.dumps(document))
    (found,) = problems(day)
    assert found.startswith(f"{MANIFEST}: its seal does not hold: this is not {MANIFEST} of {DAY} (manifest)")
    assert "its partition_day is '2026-11-21', not '2026-11-20'" in found
    code, _, err = decrypt_cli(day, monkeypatch, capsys, "--date", DAY.isoformat(), "--output", "-")
    assert code == 1 and "its seal does not hold" in err


@pytest.mark.unit
def test_the_errors_file_under_the_ratings_name_is_refused_naming_the_kind(day, monkeypatch, capsys):
    store, _, manifest, _ = day
    ratings = path_of(store, manifest, "ratings")
    ratings.write_bytes(path_of(store, manifest, "errors").read_bytes())
    found = problems(day)
    assert any(
        "its file_name is 'FirmESGRatings_20261120_errors.csv', not 'FirmESGRatings_20261120.csv'" in p
        and "its kind is 'errors', not 'ratings'" in p
        for p in found
    ), found
    code, out, err = decrypt_cli(day, monkeypatch, capsys, "--date", DAY.isoformat(), "--output", "-")
    assert code == 1 and out == "" and "its kind is 'errors', not 'ratings'" in err


@pytest.mark.unit
def test_every_edit_of_the_manifest_breaks_its_seal(day):
    store, _, _, _ = day
    original = (store.root / MANIFEST).read_bytes()
    edits = {
        "rows": lambda d: d["files"][0].update(rows=299),
        "status counts": lambda d: d["rows_by_status"].update(Failed=61),
        "a hash": lambda d: d["files"][1].update(plaintext_sha256="0" * 64),
        "a path": lambda d: d["files"][0].update(path=d["files"][1]["path"]),
        "the run": lambda d: d.update(run_id="run-9"),
        "a file dropped": lambda d: d["files"].pop(2),
        # The check report: a failed check passed off as passed, its numbers, a check dropped.
        "a check's outcome": lambda d: d["checks"][0].update(passed=True),
        "a check's numbers": lambda d: d["checks"][0]["metadata"].update(failed=1),
        "a check's number as text": lambda d: d["checks"][0]["metadata"].update(failed="60"),
        "a check's severity": lambda d: d["checks"][0].update(severity="WARN"),
        "a check dropped": lambda d: d["checks"].pop(3),
        "the check report dropped": lambda d: (d.pop("checks"), d.update(version=2)),
    }
    for what, edit in edits.items():
        document = json.loads(original)
        edit(document)
        (store.root / MANIFEST).write_text(json.dumps(document))
        (found,) = problems(day)
        assert "seal" in found, (what, found)
    document = json.loads(original)
    seal = bytearray(base64.b64decode(document["seal"]))
    seal[len(seal) // 2] ^= 1
    document["seal"] = base64.b64encode(bytes(seal)).decode()
    (store.root / MANIFEST).write_text(json.dumps(document))
    assert problems(day)[0].startswith(f"{MANIFEST}: its seal does not hold")
    document["seal"] = ""
    (store.root / MANIFEST).write_text(json.dumps(document))
    assert problems(day) == [f"{MANIFEST} has no seal: it was not written by the job"]
    (store.root / MANIFEST).write_text("{not json")
    assert problems(day)[0].startswith("malformed manifest")


@pytest.mark.unit
def test_the_manifest_carries_the_days_check_report_under_its_seal(day):
    store, keys, manifest, _ = day
    document = json.loads((store.root / MANIFEST).read_bytes())
    assert document["version"] == 3
    assert [(c["name"], c["passed"], c["blocking"]) for c in document["checks"]] == [
        ("failure_rate", False, False),  # 60 of 300 Failed
        ("completeness", True, True),
        ("file_format", True, True),
        ("reconciliation", True, False),
    ]
    assert document["checks"][0]["metadata"] == {"failed": 60, "accounts": 300, "failure_rate": 0.2,
                                                 "threshold": 0.05}  # fmt: skip
    assert live(store).checks == manifest.checks and problems(day) == []


@pytest.mark.unit
def test_a_manifest_sealed_before_manifests_carried_checks_still_verifies(day, tmp_path):
    store, keys, _, _ = day
    older = date(2026, 11, 10)
    publish_day(store, keys, tmp_path / "audit", older, run_id="run-old", with_checks=False)
    document = json.loads((store.root / manifest_file_name(older)).read_bytes())
    assert document["version"] == 2 and "checks" not in document
    assert live(store, older).checks is None
    assert problems(day, older) == []
    # A version 2 manifest given a check report afterwards is not in the job's form.
    document["checks"] = []
    (store.root / manifest_file_name(older)).write_text(json.dumps(document))
    assert "malformed manifest" in problems(day, older)[0]


@pytest.mark.unit
def test_a_missing_file_a_missing_manifest_and_a_stray_file_are_named(day):
    store, _, manifest, _ = day
    errors = manifest.entry("errors")
    (store.root / errors.path).unlink()
    (store.root / versions_folder(DAY) / manifest.version / "extra.csv.enc").write_bytes(b"?")
    (store.root / RATINGS).write_bytes(b"a file where readers might look for one")
    (store.root / summary_file_name(DAY, "html")).write_bytes(b"<p>an old summary</p>")
    assert problems(day) == [
        f"{ERRORS}: missing ({store.uri(errors.path)} does not exist)",
        f"{RATINGS}: in the store but not in the manifest",
        f"{versions_folder(DAY)}/{manifest.version}/extra.csv.enc: in the store but not in the manifest",
        f"{summary_file_name(DAY, 'html')}: in the store but not in the manifest",
    ]
    (store.root / MANIFEST).unlink()
    (found,) = problems(day)
    assert found.startswith(f"{MANIFEST}: missing (")


@pytest.mark.unit
def test_a_file_the_keys_cannot_open_is_refused_without_blaming_the_file(day, tmp_path):
    store, _, _, _ = day
    generate_key_file(tmp_path / "other.key")
    (found,) = verify_day(store, key_file_keyring(load_key_ring(tmp_path / "other.key")), DAY).problems
    assert found.startswith(f"{MANIFEST}: its seal does not hold: none of the configured keys can decrypt it")


@pytest.mark.unit
def test_a_new_set_replaces_the_old_one_whole_and_removes_it(day, tmp_path):
    store, keys, old, _ = day
    new = publish_day(store, keys, tmp_path / "audit", DAY, accounts=120, run_id="run-3")
    assert live(store) == new and new.version != old.version
    assert not (store.root / versions_folder(DAY) / old.version).exists()
    assert problems(day) == []


@pytest.mark.integration
def test_cli_verify_passes_then_fails_precisely_and_is_audited(day, tmp_path, monkeypatch, capsys):
    store, _, manifest, env = day
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "--date", DAY.isoformat()]) == 0
    assert capsys.readouterr().out == (
        f"ok {DAY}: {MANIFEST}, {RATINGS}, {ERRORS}, {summary_file_name(DAY, 'json')} match the manifest\n"
    )
    path = path_of(store, manifest, "errors")
    path.write_bytes(path.read_bytes()[:-1])
    # A process, as an operator runs it: exit status and output.
    result = subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", "verify", "--date", DAY.isoformat()],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (
        f"FAIL {ERRORS}: stored SHA-256 mismatch: manifest says {manifest.entry('errors').stored_sha256}"
        in (result.stdout)
    )
    assert f"FAIL {ERRORS}: undecryptable: " in result.stdout
    actions = [(record["action"], record["outcome"]) for record in _audit(tmp_path)]
    assert actions[-2:] == [("verify", "done"), ("verify", "failed")]


@pytest.mark.e2e
def test_the_daily_run_stages_checks_then_commits_and_audits_intent_and_done(job_environment, tmp_path):
    with SandboxServer(SandboxConfig(accounts=50, seed=5, failure_rate=0.1)) as sandbox:
        paths = job_environment(sandbox)
        result = run_day()
    store = LocalReportStore(paths["output"])
    manifest = live(store)
    assert manifest.run_id == result.run_id
    assert sum(manifest.rows_by_status.values()) == manifest.entry("ratings").rows
    assert [entry.name for entry in manifest.files] == [
        RATINGS, ERRORS, *(summary_file_name(DAY, ext) for ext in ("html", "md", "json"))
    ]  # fmt: skip
    keys = key_file_keyring(load_key_ring(paths["key_file"]))
    assert verify_day(store, keys, DAY).problems == []
    records = [r for r in _audit(tmp_path) if r["run_id"] == result.run_id]
    assert [(r["action"], r["outcome"], r["file"]) for r in records] == [
        *(("publish", "intent", entry.path) for entry in manifest.files),
        ("publish", "intent", MANIFEST),
        ("publish", "done", MANIFEST),
    ]
    assert records[-1]["sha256"] == sha256(paths["output"] / MANIFEST)
    metadata = materialized(result, "ratings_file")
    assert metadata["sha256"].value == manifest.entry("ratings").stored_sha256
    assert metadata["set_version"].value == manifest.version
    last = _audit(tmp_path)[-1]
    assert metadata["audit_checkpoint"].value == f"{last['seq']}:{last['hash']}"


def _audit(tmp_path):
    with (tmp_path / "audit" / "audit.jsonl").open() as log:
        return [json.loads(line) for line in log]


@pytest.mark.unit
def test_killed_runs_staging_is_not_a_problem_and_the_next_run_removes_it(day, tmp_path):
    store, keys, manifest, _ = day
    leftover = store.root / versions_folder(DAY) / "20261120T110000Z-deadbeef-0000"
    leftover.mkdir()
    shutil.copy(path_of(store, manifest, "ratings"), leftover / RATINGS)
    assert problems(day) == []
    publish_day(store, keys, tmp_path / "audit", DAY, run_id="run-4")
    assert not leftover.exists()


@pytest.mark.unit
def test_a_manifest_in_any_other_form_than_the_jobs_is_refused_though_its_values_parse_the_same(day):
    """Edits made without the key that keep the parsed values (and so the seal) but change what a reader's own
    program would see: refused as not in the job's form."""
    store, _, _, _ = day
    original = (store.root / MANIFEST).read_text()
    document = json.loads(original)
    failed = document["rows_by_status"]["Failed"]
    forms = {
        "a count as a float": original.replace(f'"Failed": {failed}', f'"Failed": {failed}.99'),
        "a count as a string": original.replace(f'"Failed": {failed}', f'"Failed": "{failed}"'),
        "the schema as a boolean": original.replace('"schema_version": 1', '"schema_version": true'),
        "a field added": original.replace('"format":', '"note": "looks fine", "format":', 1),
        "a date in another form": original.replace(
            f'"created_at": "{document["created_at"]}"',
            f'"created_at": "{document["created_at"].replace("T", " ")}"',
        ),
        "a second files key": original.replace('"files":', '"files": [], "files":', 1),
        "a check's outcome as a string": original.replace('"passed": false', '"passed": "false"', 1),
        "a check with a field added": original.replace('"blocking":', '"waived": true, "blocking":', 1),
    }  # fmt: skip
    for what, edited in forms.items():
        assert edited != original, what
        (store.root / MANIFEST).write_text(edited)
        (found,) = problems(day)
        assert found.startswith(f"{MANIFEST}: missing") is False and "malformed manifest" in found, (
            what,
            found,
        )
    (store.root / MANIFEST).write_text("[" * 100_000)
    assert "malformed manifest" in problems(day)[0]
    (store.root / MANIFEST).write_text(original)
    assert problems(day) == []


@pytest.mark.unit
def test_a_sealed_manifest_listing_a_file_outside_its_set_is_refused(day, monkeypatch, capsys):
    """Even a manifest sealed with the key (an insider's) may not send readers outside the day's set."""
    store, keys, manifest, _ = day
    other = live(store, NEXT_DAY).entry("ratings").path
    for path, named in [("../../../etc/passwd", "not in its set"), (other, "not in its set")]:
        files = [replace(entry, path=path) if entry.kind == "ratings" else entry for entry in manifest.files]
        forged = replace(manifest, files=files, seal="").sealed(keys)
        (store.root / MANIFEST).write_bytes(forged.to_json())
        found = problems(day)
        assert any(
            p.startswith(f"{RATINGS}: the manifest lists it at {path!r}") and named in p for p in found
        )
        code, out, err = decrypt_cli(day, monkeypatch, capsys, "--date", DAY.isoformat(), "--output", "-")
        assert code == 1 and out == "" and "refusing the ratings file" in err and "Traceback" not in err
