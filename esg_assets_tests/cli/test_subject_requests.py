"""Privacy requests as commands: ``esg-report subject export`` returns every row the warehouse holds about an
account, ``subject erase`` removes it from every table in one transaction; both for allowed callers only,
both audited with the SHA-256 of the account id. The warehouse is the real job's, two days of the sandbox."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from esg_assets.cli.report import main
from esg_assets.lib.access.caller import current_caller
from esg_assets.lib.audit.log import AuditEvent, AuditLog
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import DAY, run_day, stored_files
from esg_assets_tests.support.warehouses import warehouse_at

DAYS = (DAY, DAY + timedelta(days=1))
ME = current_caller().user


@pytest.fixture
def warehouse(job_environment, tmp_path, monkeypatch):
    """Two days of the real pipeline on the sandbox (20 accounts); two accounts with rows in every table."""
    with SandboxServer(SandboxConfig(accounts=20, seed=11)) as sandbox:
        paths = job_environment(sandbox)
        for day in DAYS:
            run_day(day)
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", f"someone-else, {ME}")
    paths["warehouse"] = tmp_path / "warehouse.duckdb"
    with warehouse_at(str(paths["warehouse"])).connect(read_only=True) as connection:
        both_days = connection.execute(
            "SELECT account_id FROM account_snapshots GROUP BY account_id HAVING count(*) = 2 "
            "INTERSECT SELECT account_id FROM held_ratings ORDER BY 1 LIMIT 2"
        ).fetchall()
    (subject,), (other,) = both_days
    return paths, subject, other


@pytest.fixture
def cli(capsys):
    """``esg-report`` in-process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def account_tables(connection) -> list[str]:
    """Straight from the catalog: every table with an account_id column."""
    return [
        name
        for (name,) in connection.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE column_name = 'account_id' AND table_schema = 'main' ORDER BY 1"
        ).fetchall()
    ]


def rows_about(paths, account_id: str) -> dict[str, list[dict]]:
    """Every row about ``account_id`` by direct SQL, as JSON would carry it (ISO dates, exact decimals)."""

    def plain(value):
        if isinstance(value, (date, datetime, time)):
            return value.isoformat()
        return str(value) if isinstance(value, Decimal) else value

    with warehouse_at(str(paths["warehouse"])).connect(read_only=True) as connection:
        held = {}
        for table in account_tables(connection):
            cursor = connection.execute(f'SELECT * FROM "{table}" WHERE account_id = ?', [account_id])
            names = [column[0] for column in cursor.description]
            held[table] = sorted(
                ({name: plain(value) for name, value in zip(names, row)} for row in cursor.fetchall()),
                key=lambda row: json.dumps(row, sort_keys=True),
            )
    return held


def exported_tables(document: dict) -> dict[str, list[dict]]:
    return {
        table: sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))
        for table, rows in document["tables"].items()
    }


def audit_text(paths) -> str:
    return (paths["audit"] / "audit.jsonl").read_text()


def subject_records(paths) -> list[dict]:
    return [
        record for record in AuditLog(paths["audit"]).records() if record["action"].startswith("subject_")
    ]


def sha256(account_id: str) -> str:
    return hashlib.sha256(account_id.encode()).hexdigest()


@pytest.mark.e2e
def test_export_returns_every_row_about_the_account_in_every_table_and_nothing_about_another(
    warehouse, cli, tmp_path
):
    paths, subject, other = warehouse
    with warehouse_at(
        str(paths["warehouse"])
    ).connect() as connection:  # a table added later is found in the catalog
        connection.execute("CREATE TABLE consent_notes (account_id VARCHAR, note VARCHAR, noted_on DATE)")
        connection.execute(
            "INSERT INTO consent_notes VALUES (?, 'asked by phone', DATE '2026-11-20'), (?, 'other', NULL)",
            [subject, other],
        )
        subject_name, other_name = (
            connection.execute(
                "SELECT account_name FROM account_snapshots WHERE account_id = ? LIMIT 1", [account]
            ).fetchone()[0]
            for account in (subject, other)
        )
    expected = rows_about(paths, subject)
    assert {"account_snapshots", "esg_ratings", "held_ratings", "consent_notes"} <= set(expected)
    assert [len(expected[table]) for table in ("account_snapshots", "esg_ratings", "held_ratings")] == [
        2,
        2,
        1,
    ]

    code, out, err = cli("subject", "export", "--account", subject)  # stdout by default
    assert code == 0, err
    document = json.loads(out)
    assert document["account_id"] == subject
    assert exported_tables(document) == expected  # every row, every column, every table; nothing else
    assert document["row_counts"] == {table: len(rows) for table, rows in expected.items()}
    assert document["days"] == [day.isoformat() for day in DAYS]
    assert document["audit_records"] == []
    (audit_note,) = [note for note in document["notes"] if "audit log" in note.lower()]
    assert "names this account in no record" in audit_note and "no account ids" in audit_note
    assert subject_name in out
    assert other not in out and other_name not in out

    code, _, err = cli("subject", "export", "--account", subject, "--output", str(tmp_path / "export.json"))
    assert code == 0, err
    written = tmp_path / "export.json"
    assert exported_tables(json.loads(written.read_text())) == expected
    assert written.stat().st_mode & 0o777 == 0o600

    records = subject_records(paths)
    assert [(record["action"], record["outcome"], record["user"]) for record in records] == [
        ("subject_export", "allowed", ME),
        ("subject_export", "allowed", ME),
    ]
    assert all(f"account sha256={sha256(subject)}" in record["detail"] for record in records)
    assert f"exported {sum(len(rows) for rows in expected.values())} rows" in records[0]["detail"]
    assert subject not in audit_text(paths)  # the log is kept for good: it never holds the id

    # A record that does name the id (none of the job's do) is found, and so are the requests, by the hash.
    log = AuditLog(paths["audit"])
    log.append(AuditEvent("verify", "done", detail=f"asked about {subject}."), current_caller())
    log.append(AuditEvent("verify", "done", detail=f"asked about {other} and {subject}x"), current_caller())
    code, out, err = cli("subject", "export", "--account", subject)
    assert code == 0, err
    found = json.loads(out)["audit_records"]
    assert [record["detail"].split(";")[0] for record in found] == [
        f"account sha256={sha256(subject)}",
        f"account sha256={sha256(subject)}",
        f"asked about {subject}.",
    ]


@pytest.mark.e2e
def test_erase_removes_the_account_from_every_table_and_keeps_the_other_and_the_published_files(
    warehouse, cli
):
    paths, subject, other = warehouse
    before = rows_about(paths, subject)
    others_before = rows_about(paths, other)
    published = {name: (paths["output"] / name).read_bytes() for name in stored_files(paths["output"])}
    assert any(name.endswith(".csv.enc") for name in published)

    code, out, err = cli("subject", "erase", "--account", subject)
    assert code == 0, err
    for table, rows in before.items():
        assert f"  {table}: {len(rows)} row{'' if len(rows) == 1 else 's'} deleted" in out
    assert f"days of its rows, whose published files still hold it: {DAYS[0]}, {DAYS[1]}" in out
    assert "The published files are kept" in out and "GDPR Art. 17(3)(b)" in out
    assert "does not rewrite published files" in out

    with warehouse_at(str(paths["warehouse"])).connect(read_only=True) as connection:
        tables = account_tables(connection)
        assert {"account_snapshots", "esg_ratings", "held_ratings"} <= set(tables)
        for table in tables:
            held = connection.execute(f'SELECT count(*) FROM "{table}" WHERE account_id = ?', [subject])
            assert held.fetchone() == (0,), table
    assert rows_about(paths, other) == others_before
    assert {
        name: (paths["output"] / name).read_bytes() for name in stored_files(paths["output"])
    } == published

    code, out, err = cli("subject", "export", "--account", subject)
    assert code == 0, err
    document = json.loads(out)
    assert all(rows == [] for rows in document["tables"].values()) and set(
        document["row_counts"].values()
    ) == {0}
    assert document["days"] == []
    # What it still finds is the record of the erasure itself, by the SHA-256 of the id.
    assert [(record["action"], record["outcome"]) for record in document["audit_records"]] == [
        ("subject_erase", "intent"),
        ("subject_erase", "done"),
    ]

    records = subject_records(paths)
    assert [(record["action"], record["outcome"]) for record in records] == [
        ("subject_erase", "intent"),
        ("subject_erase", "done"),
        ("subject_export", "allowed"),
    ]
    done = records[1]["detail"]
    assert done.startswith(
        f"account sha256={sha256(subject)}; deleted {sum(map(len, before.values()))} rows ("
    )
    assert "held_ratings 1" in done and "published files kept" in done
    assert subject not in audit_text(paths)
    code, out, _ = cli("audit", "verify")
    assert code == 0 and out.startswith("ok ")


@pytest.mark.e2e
def test_an_erase_that_fails_midway_erases_nothing_and_keeps_the_id_out_of_the_log(warehouse, cli):
    paths, subject, _ = warehouse
    with warehouse_at(str(paths["warehouse"])).connect() as connection:
        # Deleted in name order: account_snapshots, then accounts_registry, which consent_child still
        # references.
        connection.execute("CREATE TABLE accounts_registry (account_id VARCHAR PRIMARY KEY)")
        connection.execute("CREATE TABLE consent_child (account_id VARCHAR REFERENCES accounts_registry)")
        connection.execute("INSERT INTO accounts_registry VALUES (?)", [subject])
        connection.execute("INSERT INTO consent_child VALUES (?)", [subject])
    before = rows_about(paths, subject)
    code, out, err = cli("subject", "erase", "--account", subject)
    assert code == 1 and out == ""
    assert "nothing was erased (the transaction was rolled back): Constraint Error" in err
    assert rows_about(paths, subject) == before  # account_snapshots' delete went back with the rest
    intent, failed = subject_records(paths)
    assert (intent["outcome"], failed["outcome"]) == ("intent", "failed")
    assert "Constraint Error" in failed["detail"] and "<account>" in failed["detail"]  # DuckDB named the key
    assert subject not in audit_text(paths)


@pytest.mark.e2e
def test_a_caller_not_on_the_list_is_denied_and_audited(warehouse, cli, monkeypatch, tmp_path):
    paths, subject, _ = warehouse
    before = rows_about(paths, subject)
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", "someone-else, group:no-such-group")
    code, out, err = cli("subject", "export", "--account", subject, "--output", str(tmp_path / "out.json"))
    assert code == 3 and out == ""
    assert f"{ME} may not export the data of an account: user {ME} is not in ESG_AUTHORIZED_READERS" in err
    assert not (tmp_path / "out.json").exists()
    code, out, err = cli("subject", "erase", "--account", subject)
    assert code == 3 and out == "" and f"{ME} may not erase the data of an account" in err
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", "")
    code, _, err = cli("subject", "erase", "--account", subject)
    assert code == 3 and "ESG_AUTHORIZED_READERS is empty" in err
    assert rows_about(paths, subject) == before
    records = subject_records(paths)
    assert [(record["action"], record["outcome"], record["user"]) for record in records] == [
        ("subject_export", "denied", ME),
        ("subject_erase", "denied", ME),
        ("subject_erase", "denied", ME),
    ]
    assert all(record["detail"].startswith(f"account sha256={sha256(subject)}; ") for record in records)
    assert subject not in audit_text(paths)


@pytest.mark.unit
def test_a_bad_account_id_exits_2_with_a_clear_message(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", ME)
    for bad in ("ACC 1", "ACC-1';DROP TABLE esg_ratings;--", "", "A" * 65, "../etc/passwd", "ACC-1\n"):
        for action in ("export", "erase"):
            code, out, err = cli("subject", action, "--account", bad)
            assert code == 2 and out == ""
            assert f"argument --account: invalid account id {bad!r}: expected 1 to 64 letters, digits" in err
            assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before the warehouse or the audit log was opened


@pytest.mark.e2e
def test_the_commands_as_a_real_process_and_a_warehouse_held_by_a_run(warehouse):
    paths, subject, other = warehouse
    environment = {key: value for key, value in os.environ.items()}
    environment["PYTHONPATH"] = str(REPO_ROOT)

    def esg_report(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "esg_assets.cli.report", *args],
            env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    exported = esg_report("subject", "export", "--account", other, "--output", "-")
    assert exported.returncode == 0, exported.stderr
    assert exported_tables(json.loads(exported.stdout)) == rows_about(paths, other)

    with warehouse_at(str(paths["warehouse"])).connect():  # as the daily job holds it while it writes
        refused = esg_report("subject", "erase", "--account", subject)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"is locked by process {os.getpid()}" in refused.stderr and "Traceback" not in refused.stderr
    assert [record["outcome"] for record in subject_records(paths)[-2:]] == ["allowed", "failed"]
    assert rows_about(paths, subject)["held_ratings"] != []

    erased = esg_report("subject", "erase", "--account", subject)
    assert erased.returncode == 0, erased.stderr
    assert "held_ratings: 1 row deleted" in erased.stdout and "GDPR Art. 17(3)(b)" in erased.stdout
    assert all(rows == [] for rows in rows_about(paths, subject).values())
    verified = esg_report("audit", "verify")
    assert verified.returncode == 0, verified.stdout
