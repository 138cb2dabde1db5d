"""The audit log: append-only, hash-chained, safe for concurrent writers, and `esg-report audit verify` names
every edited, deleted, re-ordered or cut record; `audit show` lists a day's records."""

import json
import multiprocessing
import os
import stat
from datetime import date

import pytest

from esg_assets.cli.report import main
from esg_assets.lib.access.caller import Caller
from esg_assets.lib.audit.log import (
    DECRYPT,
    DENIED,
    DONE,
    PUBLISH,
    AuditEvent,
    AuditLog,
    AuditLogError,
    record_hash,
)

DAY = date(2026, 11, 20)
ALICE = Caller("alice", frozenset({"esg-readers"}), "host-1", "alice")


def fill(log: AuditLog, count: int = 5) -> None:
    for number in range(count):
        log.append(AuditEvent(PUBLISH, DONE, file=f"file-{number}", day=DAY, sha256="ab" * 32), ALICE)


def lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def problems(log: AuditLog) -> list[str]:
    return log.verify()[1]


@pytest.fixture
def log(tmp_path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit")
    fill(audit)
    return audit


@pytest.mark.unit
def test_records_chain_and_the_files_are_private(log):
    records = list(log.records())
    assert [record["seq"] for record in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == "0" * 64
    assert all(later["prev"] == earlier["hash"] for earlier, later in zip(records, records[1:]))
    assert all(record["hash"] == record_hash(record) for record in records)
    assert records[0] | {"at": None, "hash": None, "prev": None} == {
        "seq": 1, "at": None, "user": "alice", "os_user": "alice", "host": "host-1", "action": "publish",
        "file": "file-0", "day": "2026-11-20", "sha256": "ab" * 32, "outcome": "done", "detail": None,
        "run_id": None, "hash": None, "prev": None,
    }  # fmt: skip
    assert log.verify() == (5, [])
    assert stat.S_IMODE(log.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


@pytest.mark.unit
def test_an_edited_record_is_named(log):
    records = lines(log)
    edited = json.loads(records[2])
    edited["user"] = "mallory"
    records[2] = json.dumps(edited, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.path.write_bytes(b"".join(records))
    assert problems(log) == ["line 3: record 3 was edited (its hash does not match its content)"]


@pytest.mark.unit
def test_any_single_byte_change_is_detected(log):
    original = log.path.read_bytes()
    for position in range(0, len(original), 7):
        altered = bytearray(original)
        altered[position] = ord("#") if altered[position] != ord("#") else ord("$")
        log.path.write_bytes(bytes(altered))
        assert problems(log), f"a change at byte {position} went unnoticed"
    log.path.write_bytes(original)
    assert problems(log) == []


@pytest.mark.unit
def test_a_deleted_record_is_named(log):
    records = lines(log)
    del records[1]
    log.path.write_bytes(b"".join(records))
    assert problems(log) == [
        "line 2: record 3 where record 2 belongs (records were deleted, inserted or re-ordered)",
        "line 2: record 3 does not chain to the record before it",
    ]


@pytest.mark.unit
def test_reordered_records_are_named(log):
    records = lines(log)
    records[1], records[2] = records[2], records[1]
    log.path.write_bytes(b"".join(records))
    found = problems(log)
    assert "line 2: record 3 where record 2 belongs (records were deleted, inserted or re-ordered)" in found
    assert "line 3: record 2 does not chain to the record before it" in found


@pytest.mark.unit
def test_records_cut_from_the_end_are_caught_by_the_checkpoint(log):
    log.path.write_bytes(b"".join(lines(log)[:3]))
    assert problems(log) == [
        "the log ends at record 3, but the checkpoint names record 5 "
        f"(hash {log.checkpoint().hash[:12]}...): records were cut from the end or the last one was changed"
    ]
    with pytest.raises(AuditLogError, match="does not end where its checkpoint says"):
        fill(log, 1)  # appending would hide the cut


@pytest.mark.unit
def test_a_torn_last_record_is_named_and_blocks_appends(log):
    log.path.write_bytes(log.path.read_bytes()[:-30])
    assert "line 5 is incomplete (the log was cut or torn here)" in problems(log)
    with pytest.raises(AuditLogError, match="ends with an incomplete record"):
        fill(log, 1)


@pytest.mark.unit
def test_a_missing_checkpoint_is_named(log):
    log.checkpoint_path.unlink()
    assert problems(log) == [f"the checkpoint {log.checkpoint_path} is missing"]


def _append_many(directory: str, writer: int, count: int) -> None:
    log = AuditLog(directory)
    for number in range(count):
        log.append(AuditEvent(DECRYPT, DONE, file=f"w{writer}-{number}"), ALICE)


@pytest.mark.integration
def test_concurrent_writers_keep_one_intact_chain(tmp_path):
    directory = str(tmp_path / "audit")
    processes = [
        multiprocessing.get_context("fork").Process(target=_append_many, args=(directory, w, 25))
        for w in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    assert AuditLog(directory).verify() == (100, [])


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().out

    return run


@pytest.mark.unit
def test_cli_audit_verify_passes_then_names_the_damage(log, cli):
    code, out = cli("audit", "verify")
    assert (code, out) == (0, f"ok {log.path}: 5 records, chain and checkpoint intact\n")
    records = lines(log)
    log.path.write_bytes(records[0] + records[2].replace(b'"alice"', b'"bob"', 1) + b"".join(records[3:]))
    code, out = cli("audit", "verify")
    assert code == 1
    assert "FAIL line 2: record 3 was edited" in out and "FAIL line 2: record 3 where record 2 belongs" in out


@pytest.mark.unit
def test_cli_audit_show_lists_a_days_records(log, cli):
    log.append(
        AuditEvent(DECRYPT, DENIED, file="FirmESGRatings_20261120.csv.enc", day=DAY, detail="not listed"),
        ALICE,
    )
    log.append(
        AuditEvent(DECRYPT, DONE, file="FirmESGRatings_20261121.csv.enc", day=date(2026, 11, 21)), ALICE
    )
    code, out = cli("audit", "show", "--date", "2026-11-20")
    assert code == 0
    shown = out.splitlines()
    assert len(shown) == 6
    assert " #6 alice@host-1 decrypt FirmESGRatings_20261120.csv.enc denied - not listed" in shown[-1]
    assert cli("audit", "show", "--date", "2026-11-22") == (0, "no audit records for 2026-11-22\n")


@pytest.mark.unit
def test_an_unwritable_audit_log_is_an_error_not_a_silent_gap(tmp_path):
    if os.getuid() == 0:
        blocked = tmp_path / "not-a-directory"
        blocked.write_text("")  # even root cannot create a directory under a file
        log = AuditLog(blocked / "audit")
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        log = AuditLog(tmp_path / "ro" / "audit")
    with pytest.raises(AuditLogError, match="cannot open the audit log"):
        fill(log, 1)
