"""The audit log's witnesses: every record also goes to a real rsyslog on loopback and to an S3 Object Lock
bucket (moto's server). A consistent rewrite of the local log (a record dropped, changed or added, the chain
and checkpoint recomputed) passes the chain check, and `esg-report audit verify` names each such record for
each witness; the locked bucket refuses to delete a witness record; a witness that is down fails the
append."""

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from esg_assets.cli.report import main
from esg_assets.config.environment import now
from esg_assets.config.resources import audit_trail
from esg_assets.core.file_names import manifest_file_name
from esg_assets.lib.access.caller import Caller, current_caller
from esg_assets.lib.audit.log import (
    ALLOWED,
    DECRYPT,
    DENIED,
    DONE,
    GENESIS,
    INTENT,
    PUBLISH,
    VERIFY,
    AuditEvent,
    AuditLog,
    AuditLogError,
    record_hash,
)
from esg_assets.lib.audit.witness import SyslogWitness
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import generate_key_file, load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.published_day import publish_day
from esg_assets_tests.support.syslog_loopback import Rsyslog

DAY = date(2026, 11, 20)
ALICE = Caller("alice", frozenset({"esg-readers"}), "host-1", "alice")
MALLORY = Caller("mallory", frozenset(), "host-1", "mallory")
JOB = Caller("esg", frozenset({"esg"}), "batch-host", "esg")
RATINGS = "FirmESGRatings_20261120.csv.enc"
MANIFEST = "FirmESGRatings_20261120.manifest.json"
EVENTS = [
    (AuditEvent(PUBLISH, INTENT, file=MANIFEST, day=DAY, sha256="ab" * 32, run_id="run-1"), JOB),
    (AuditEvent(PUBLISH, DONE, file=MANIFEST, day=DAY, sha256="ab" * 32, run_id="run-1"), JOB),
    (AuditEvent(DECRYPT, ALLOWED, file=RATINGS, day=DAY, sha256="cd" * 32), ALICE),
    (AuditEvent(DECRYPT, DENIED, file=RATINGS, day=DAY, detail="not in ESG_AUTHORIZED_READERS"), MALLORY),
    (AuditEvent(VERIFY, DONE, file=MANIFEST, day=DAY, detail="3 files checked, 0 problems"), JOB),
]


class Witnessed:
    """The local log, its two witnesses, and `esg-report audit verify` in-process."""

    def __init__(self, log: AuditLog, daemon: Rsyslog, s3, bucket: str, capsys):
        self.log, self.rsyslog, self.s3, self.bucket = log, daemon, s3, bucket
        self._capsys = capsys

    @property
    def names(self) -> list[str]:
        return [f"syslog (copy {self.rsyslog.copy})", f"s3://{self.bucket}/audit/"]

    def fill(self, events=EVENTS) -> list[dict]:
        return [self.log.append(event, actor) for event, actor in events]

    def verify(self) -> tuple[int, str, str]:
        code = main(["audit", "verify"])
        out, err = self._capsys.readouterr()
        return code, out, err

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="audit/").get("Contents", [])
        return [item["Key"] for item in listed]

    def version_of(self, key: str) -> str:
        return self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)["Versions"][-1]["VersionId"]


def configured_log(directory) -> AuditLog:
    """The log in ``directory`` with the witnesses the ESG_AUDIT_* settings name now, as the job builds it."""
    return AuditLog(directory, witnesses=audit_trail(now).witnesses)


@pytest.fixture
def locked_bucket(aws):
    """A bucket with S3 Object Lock (and so versioning) enabled; the witness sets each object's lock."""
    name = f"esg-audit-{uuid.uuid4().hex[:12]}"  # DNS-valid
    aws.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


@pytest.fixture
def witnessed(tmp_path, monkeypatch, capsys, rsyslog, aws, locked_bucket) -> Witnessed:
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("ESG_AUDIT_SYSLOG", rsyslog.address)
    monkeypatch.setenv("ESG_AUDIT_SYSLOG_COPY", str(rsyslog.copy))
    monkeypatch.setenv("ESG_AUDIT_WITNESS_URI", f"s3://{locked_bucket}/audit")
    monkeypatch.setenv("ESG_S3_ENDPOINT_URL", aws.endpoint)
    return Witnessed(configured_log(tmp_path / "audit"), rsyslog, aws.client("s3"), locked_bucket, capsys)


def line(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def rewrite_consistently(log: AuditLog, records: list[dict]) -> None:
    """What someone acting as the service account can do: a new chain of these records, and its checkpoint."""
    previous, chained = GENESIS, []
    for seq, record in enumerate(records, start=1):
        record = {**record, "seq": seq, "prev": previous}
        record["hash"] = previous = record_hash(record)
        chained.append(record)
    log.path.write_bytes(b"".join(line(record) for record in chained))
    log.checkpoint_path.write_bytes(line({"seq": chained[-1]["seq"], "hash": chained[-1]["hash"]}))
    assert log.verify() == (len(chained), [])  # the chain and the checkpoint alone see nothing


def short(record: dict) -> str:
    return f"{record['hash'][:12]}..."


def fails(out: str) -> list[str]:
    return [text for text in out.splitlines() if text.startswith("FAIL")]


@pytest.mark.integration
def test_every_record_reaches_both_witnesses_and_verify_compares_them(witnessed):
    records = witnessed.fill()
    assert witnessed.rsyslog.records(5) == records
    assert all("esg-audit[" in text for text in witnessed.rsyslog.lines())
    assert witnessed.keys() == [f"audit/{r['seq']:012d}-{r['hash']}.json" for r in records]
    key = witnessed.keys()[2]
    stored = witnessed.s3.get_object(Bucket=witnessed.bucket, Key=key)
    assert stored["Body"].read() == line(records[2])
    assert stored["ObjectLockMode"] == "COMPLIANCE"
    seven_years = datetime.now(UTC) + timedelta(days=2555)
    assert abs(stored["ObjectLockRetainUntilDate"] - seven_years) < timedelta(minutes=5)
    assert not witnessed.log.owed_path.exists()
    code, out, err = witnessed.verify()
    assert code == 0, out
    assert out.splitlines() == [
        f"ok {witnessed.log.path}: 5 records, chain and checkpoint intact",
        f"ok witness {witnessed.names[0]}: 5 records match the local log",
        f"ok witness {witnessed.names[1]}: 5 records match the local log",
    ]
    assert err == ""


def _dropped(records: list[dict]) -> list[dict]:
    return records[:-1]


def _altered(records: list[dict]) -> list[dict]:
    records[2] = {**records[2], "user": "bob", "os_user": "bob"}  # who read the file on the 20th
    return records


def _added(records: list[dict]) -> list[dict]:
    forged = {**records[2], "at": datetime.now(UTC).isoformat(timespec="microseconds"), "user": "carol"}
    return [*records, forged]


@pytest.mark.integration
@pytest.mark.parametrize("rewrite", [_dropped, _altered, _added], ids=["dropped", "altered", "added"])
def test_a_consistent_rewrite_passes_the_chain_but_verify_names_it_for_each_witness(witnessed, rewrite):
    original = witnessed.fill()
    witnessed.rsyslog.records(5)
    rewrite_consistently(witnessed.log, rewrite([dict(record) for record in original]))
    rewritten = list(witnessed.log.records())
    code, out, _ = witnessed.verify()
    assert code == 1
    chain = f"ok {witnessed.log.path}: {len(rewritten)} records, chain and checkpoint intact"
    assert out.splitlines()[0] == chain
    old, new = [short(record) for record in original], [short(record) for record in rewritten]
    expected = []
    for name in witnessed.names:
        if rewrite is _dropped:
            expected.append(
                f"FAIL witness {name}: record 5 (hash {old[4]}, {_where(witnessed, name, 5)}) is at the "
                "witness but missing from the local log: removed from it"
            )
        elif rewrite is _altered:
            expected.append(
                f"FAIL witness {name}: record 3 was altered: the local log's (hash {new[2]}) is not the one "
                f"the witness holds (hash {old[2]}); they differ in os_user "
                '("alice" at the witness, "bob" locally), user ("alice" at the witness, "bob" locally)'
            )
            expected += [
                f"FAIL witness {name}: record {seq} was altered: the local log's (hash {new[seq - 1]}) is "
                f"not the one the witness holds (hash {old[seq - 1]}); only their link to the record "
                "before differs: rewritten to follow a record that was changed"
                for seq in (4, 5)
            ]
        else:
            expected.append(
                f"FAIL witness {name}: record 6 (hash {new[5]}) is in the local log but not at the witness: "
                "added to the local log afterwards (or appended while this witness was not configured)"
            )
    assert fails(out) == expected
    assert witnessed.log.verify() == (len(rewritten), [])  # what the chain alone says


def _where(witnessed: Witnessed, name: str, seq: int) -> str:
    if name.startswith("syslog"):
        return f"line {seq}"
    key = witnessed.keys()[seq - 1]
    return f"object {key} ({witnessed.version_of(key)})"


@pytest.mark.integration
def test_verify_as_a_command_exits_1_naming_the_altered_record(witnessed):
    original = witnessed.fill()
    witnessed.rsyslog.records(5)
    rewrite_consistently(witnessed.log, _altered([dict(record) for record in original]))
    base = {key: value for key, value in os.environ.items()}
    result = subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", "audit", "verify"],
        env={**base, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr.decode()
    found = fails(result.stdout.decode())
    assert len(found) == 6  # records 3, 4 and 5, at each of the two witnesses
    for name in witnessed.names:
        altered = f"FAIL witness {name}: record 3 was altered"
        assert any(text.startswith(altered) and "user (" in text for text in found)
    assert b"Traceback" not in result.stderr


@pytest.mark.integration
def test_the_locked_bucket_refuses_to_delete_a_witness_record_and_verify_names_every_attempt(witnessed):
    records = witnessed.fill(EVENTS[:3])
    witnessed.rsyslog.records(3)
    key = witnessed.keys()[1]
    version = witnessed.version_of(key)
    for arguments in ({}, {"BypassGovernanceRetention": True}):  # compliance mode: no one may bypass it
        with pytest.raises(ClientError) as refused:
            witnessed.s3.delete_object(Bucket=witnessed.bucket, Key=key, VersionId=version, **arguments)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # Writing the name again does not replace the locked version: S3 keeps it and stacks a new one on top; a
    # delete without a version only adds a delete marker. Both are visible, and the original is what counts.
    forged = {**records[1], "user": "bob"}
    witnessed.s3.put_object(Bucket=witnessed.bucket, Key=key, Body=line(forged))
    witnessed.s3.delete_object(Bucket=witnessed.bucket, Key=key)
    original = witnessed.s3.get_object(Bucket=witnessed.bucket, Key=key, VersionId=version)
    assert original["Body"].read() == line(records[1])
    code, out, _ = witnessed.verify()
    assert code == 1
    s3 = witnessed.names[1]
    assert fails(out) == [
        f"FAIL witness {s3}: object {key} was written 2 times: someone tried to overwrite it; its first, "
        "locked version is the one compared",
        f"FAIL witness {s3}: object {key} was deleted 1 time(s): a delete marker hides it, its locked "
        "version remains and is the one compared",
    ]
    assert f"ok witness {witnessed.names[0]}: 3 records match the local log" in out


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="moto lets a compliance-mode retention be shortened; AWS S3 refuses it with AccessDenied",
)
def test_a_compliance_lock_cannot_be_shortened(witnessed):
    witnessed.fill(EVENTS[:1])
    key = witnessed.keys()[0]
    try:
        witnessed.s3.put_object_retention(
            Bucket=witnessed.bucket,
            Key=key,
            VersionId=witnessed.version_of(key),
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=1)},
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDenied"
    else:
        raise AssertionError("the compliance lock was shortened")


@pytest.mark.integration
def test_a_syslog_that_is_down_fails_the_append_and_gets_the_record_when_it_is_back(witnessed):
    witnessed.fill(EVENTS[:2])
    witnessed.rsyslog.stop()
    with pytest.raises(AuditLogError) as failed:
        witnessed.log.append(*EVENTS[2])
    message = str(failed.value)
    assert message.startswith(
        f"audit record 3 is in the local log, but not every witness took it (record 3: syslog "
        f"{witnessed.rsyslog.address} did not take it: Connection refused): an action that cannot be "
        "witnessed must not happen"
    )
    record = list(witnessed.log.records())[-1]
    assert witnessed.log.verify() == (3, [])  # the attempt is recorded locally ...
    assert len(witnessed.keys()) == 3  # ... and by the witness that took it ...
    assert witnessed.log.owed() == {"syslog": [(3, record["hash"])]}  # ... and is owed to the other
    code, out, _ = witnessed.verify()
    assert code == 1
    assert fails(out) == [
        f"FAIL witness {witnessed.names[0]}: record 3 (hash {short(record)}) is in the local log but not at "
        "the witness yet: the witness did not take it when it was appended, and the next append gives it "
        "again"
    ]
    witnessed.rsyslog.start()
    witnessed.log.append(*EVENTS[3])
    assert [r["seq"] for r in witnessed.rsyslog.records(4)] == [1, 2, 3, 4]
    assert witnessed.log.owed() == {} and not witnessed.log.owed_path.exists()
    code, out, _ = witnessed.verify()
    assert code == 0, out


@pytest.mark.integration
def test_an_s3_witness_that_cannot_be_reached_fails_the_append(witnessed, monkeypatch):
    witnessed.fill(EVENTS[:1])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("ESG_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    log = configured_log(witnessed.log.directory)
    with pytest.raises(AuditLogError, match=rf"record 2: s3://{witnessed.bucket}/audit/ did not take it: "):
        log.append(*EVENTS[1])
    assert witnessed.rsyslog.records(2)[-1]["seq"] == 2  # syslog took it
    assert list(log.owed()) == ["s3"]


@pytest.mark.integration
def test_a_publication_whose_intent_cannot_be_witnessed_is_not_made_and_a_read_releases_nothing(
    witnessed, tmp_path, monkeypatch, capsys
):
    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    keys = key_file_keyring(load_key_ring(key_file))
    store = LocalReportStore(tmp_path / "reports")
    publish_day(store, keys, witnessed.log, DAY, accounts=20)
    day_two = date(2026, 11, 21)
    witnessed.rsyslog.stop()
    with pytest.raises(AuditLogError, match="not every witness took it"):
        publish_day(store, keys, witnessed.log, day_two, accounts=20)
    assert not store.exists(manifest_file_name(day_two))  # the commit comes after its intent record
    # A read is recorded before anything is released: unwitnessed, nothing is decrypted.
    monkeypatch.setenv("ESG_OUTPUT_URI", store.root.as_uri())
    monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", str(key_file))
    monkeypatch.setenv("ESG_AUTHORIZED_READERS", current_caller().user)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = main(["decrypt", "--date", DAY.isoformat(), "--output", "out.csv"])
    err = capsys.readouterr().err
    assert code == 1
    assert "not every witness took it" in err and "nothing was decrypted" in err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.integration
def test_a_unix_socket_syslog_gets_the_records_too(witnessed, monkeypatch):
    monkeypatch.setenv("ESG_AUDIT_SYSLOG", str(witnessed.rsyslog.socket))
    log = configured_log(witnessed.log.directory)
    records = [log.append(event, actor) for event, actor in EVENTS[:2]]
    assert witnessed.rsyslog.records(2) == records
    code, out, _ = witnessed.verify()
    assert code == 0, out


@pytest.mark.integration
def test_the_witness_cannot_vouch_for_records_the_service_account_sends_it(witnessed):
    """A witness shows what was removed or changed, not that a record is genuine: whoever can act as the
    service account can send it records. Sent beside a real one, such a record is still named."""
    records = witnessed.fill(EVENTS[:2])
    forged = {**records[1], "user": "carol"}
    forged["hash"] = record_hash(forged)
    SyslogWitness(witnessed.rsyslog.address).take(forged)
    witnessed.rsyslog.records(3)
    code, out, _ = witnessed.verify()
    assert code == 1
    assert fails(out) == [
        f"FAIL witness {witnessed.names[0]}: record 2 (hash {short(forged)}, line 3) is at the witness "
        f"besides the local record 2 (hash {short(records[1])}), which it holds too: sent to the witness by "
        "someone else, or the local record was replaced and the replacement sent to the witness as well; "
        'they differ in user ("carol" at the witness, "esg" locally)'
    ]


@pytest.mark.unit
def test_witnesses_are_off_by_default_and_a_bad_setting_refuses_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    for name in ("ESG_AUDIT_SYSLOG", "ESG_AUDIT_SYSLOG_COPY", "ESG_AUDIT_WITNESS_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
    log = configured_log(tmp_path / "audit")
    assert log.witnesses == ()
    log.append(*EVENTS[0])
    assert main(["audit", "verify"]) == 0
    assert "no audit witness to compare with" in capsys.readouterr().err
    for name, value, complaint in [
        ("ESG_AUDIT_SYSLOG", "syslog.example.com", "host:port (TCP) or the path of a unix socket"),
        ("ESG_AUDIT_WITNESS_URI", "s3://B/audit", "a valid S3 location"),
        ("ESG_AUDIT_WITNESS_RETENTION_DAYS", "0", "a positive whole number"),
    ]:
        monkeypatch.setenv("ESG_AUDIT_WITNESS_URI", "s3://audit-bucket/audit")
        monkeypatch.setenv(name, value)
        fresh = configured_log(tmp_path / f"audit-{name}")
        expected = f"misconfigured: Setting {name} must be {complaint}"
        with pytest.raises(AuditLogError, match=re.escape(expected)) as refused:
            fresh.append(*EVENTS[0])
        assert f"got {value!r}" in str(refused.value)
        assert not fresh.path.exists()
        monkeypatch.delenv(name)
