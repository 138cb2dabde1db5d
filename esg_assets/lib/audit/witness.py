"""Witnesses of the audit log: copies of every record in places the service account can add to but not change.

The local log (``log.py``) and its checkpoint belong to the service account, so whoever can act as it can
rewrite both consistently. Each record is therefore also handed to witnesses outside that account's control:

- **syslog** (``ESG_AUDIT_SYSLOG``): one message per record, the record's JSON line under the tag
  ``esg-audit``, facility authpriv, to the host's syslog daemon, which forwards it to the firm's SIEM. Over
  TCP each record has a connection of its own, closed by us and then by the daemon: the daemon closing its
  end says it has read the record (a kept-open connection, as ``logging.handlers.SysLogHandler`` keeps,
  takes the first record after the daemon died without an error, and loses it). ``ESG_AUDIT_SYSLOG_COPY`` is
  a file the daemon writes the records into, root-owned: ``esg-report audit verify`` reads it.
- **S3 Object Lock** (``ESG_AUDIT_WITNESS_URI``): one object per record, ``<prefix><seq>-<hash>.json``, each
  locked in compliance mode for ``ESG_AUDIT_WITNESS_RETENTION_DAYS``: no one, the bucket's owner included,
  can delete or shorten the lock of a version before it expires.

A witness holds what it was given: it shows records removed from or changed in the local log afterwards, but
the service account can also send it records, so it cannot prove that a record is genuine (``compare``).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from esg_assets.core import settings
from esg_assets.core.s3_locations import parse_s3_uri
from esg_assets.core.setting_values import BadSettingError
from esg_assets.lib.audit.records import record_hash, record_line

TAG = "esg-audit"  # the syslog tag (RFC 3164) and APP-NAME (RFC 5424) of every witnessed record
PRIORITY = 10 * 8 + 5  # facility authpriv (10): security messages kept private; severity notice (5)
SEND_TIMEOUT_SECONDS = 10.0
SYSLOG, S3 = "syslog", "s3"  # the kinds of witness; a log keeps, per kind, the records it still owes it

_HASH = re.compile(r"[0-9a-f]{64}")
_OBJECT_NAME = re.compile(r"([0-9]{12})-([0-9a-f]{64})\.json")
_TAGGED = re.compile(rf"(?<![\w.-]){re.escape(TAG)}(?![\w.-])")


class WitnessError(Exception):
    """A witness did not take a record, or cannot be read."""


class AuditWitness(Protocol):
    """Somewhere each audit record is also sent."""

    kind: str
    name: str

    def take(self, record: dict[str, Any]) -> None:
        """Hand over one record; ``WitnessError`` unless the witness confirms it has it."""
        ...


@dataclass(frozen=True)
class Witnessed:
    """A record as a witness holds it: its number and hash, where it is, and its content when at hand."""

    seq: int
    hash: str
    where: str
    record: dict[str, Any] | None = None
    version: str | None = None  # of an S3 object: its first version, the locked original


class WitnessCopy(Protocol):
    """What a witness holds, read back for ``esg-report audit verify``."""

    kind: str
    name: str

    def read(self) -> tuple[list[Witnessed], list[str]]:
        """The records held and what is wrong with the copy itself; ``WitnessError`` if it cannot be read."""
        ...

    def content(self, witnessed: Witnessed) -> dict[str, Any] | None:
        """The record's content, for naming the fields that differ (``None`` when it cannot be had)."""
        ...


class SyslogWitness:
    """Sends each record to the syslog daemon at ``host:port`` (TCP) or a unix datagram socket (/dev/log)."""

    kind = SYSLOG

    def __init__(self, address: str, timeout: float = SEND_TIMEOUT_SECONDS):
        self.address = address
        self.name = f"syslog {address}"
        self._target = parse_syslog_address(address)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SyslogWitness({self.address!r})"

    def take(self, record: dict[str, Any]) -> None:
        line = record_line(record)
        try:
            if isinstance(self._target, str):
                self._send_local(line)
            else:
                self._send_tcp(line)
        except OSError as error:
            raise WitnessError(f"{self.name} did not take it: {error.strerror or error}") from None

    def _send_tcp(self, line: str) -> None:
        # RFC 5424 over TCP, one message per connection, ended by LF (RFC 6587 non-transparent framing: the
        # JSON line holds no LF). No syslog acknowledges over plain TCP, so the connection is what confirms:
        # we half-close, and the daemon closes its end once it has read everything we sent.
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        host = socket.gethostname() or "-"
        message = f"<{PRIORITY}>1 {now} {host} {TAG} {os.getpid()} - - {line}\n".encode()
        with socket.create_connection(self._target, timeout=self._timeout) as connection:
            connection.sendall(message)
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(4096):
                pass  # a syslog daemon sends nothing back; wait for its end of the connection to close

    def _send_local(self, line: str) -> None:
        # The local form syslog(3) uses; the daemon adds the time and host. A datagram to a unix socket is
        # delivered whole or refused (the daemon's socket buffer full blocks until the timeout).
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as connection:
            connection.settimeout(self._timeout)
            connection.connect(self._target)
            connection.send(f"<{PRIORITY}>{TAG}[{os.getpid()}]: {line}".encode())


class SyslogCopy:
    """The file the syslog daemon writes the ``esg-audit`` records into (``ESG_AUDIT_SYSLOG_COPY``).

    Any rsyslog file template that ends with the message works (the default ``RSYSLOG_FileFormat`` and
    ``RSYSLOG_TraditionalFileFormat`` do): the record is the JSON after the tag. Other lines are skipped.
    """

    kind = SYSLOG

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.name = f"syslog (copy {self.path})"

    def read(self) -> tuple[list[Witnessed], list[str]]:
        records: list[Witnessed] = []
        problems: list[str] = []
        try:
            copy = self.path.open("rb")
        except OSError as error:
            raise WitnessError(f"cannot read {self.path}: {error.strerror or error}") from None
        with copy:
            for number, raw in enumerate(copy, start=1):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                tagged = _TAGGED.search(line)
                if tagged is None:
                    continue
                start = line.find("{", tagged.end())
                record = _parse_record(line[start:]) if start >= 0 else None
                if record is None:
                    problems.append(
                        f"line {number} has the {TAG} tag but no whole record (cut by the daemon's message "
                        "size limit, or not sent by the job)"
                    )
                    continue
                if record_hash(record) != record["hash"]:
                    problems.append(
                        f"line {number}: record {record['seq']} does not match its own hash (damaged, or not "
                        "sent by the job)"
                    )
                    continue
                records.append(Witnessed(record["seq"], record["hash"], f"line {number}", record))
        return records, problems

    def content(self, witnessed: Witnessed) -> dict[str, Any] | None:
        return witnessed.record


class S3Witness:
    """Writes each record as an object locked in compliance mode, and reads them back (every version)."""

    kind = S3

    def __init__(self, uri: str, retention_days: int, client: Any = None, endpoint_url: str = ""):
        self.bucket, self.prefix = parse_witness_uri(uri)
        self.name = f"s3://{self.bucket}/{self.prefix}"
        self.retention_days = retention_days
        self._client = client
        self._endpoint_url = endpoint_url

    def __repr__(self) -> str:
        return f"S3Witness({self.name!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            # As the report store makes its client; imported here: dagster_aws takes seconds to import.
            from dagster_aws.s3 import S3Resource

            self._client = S3Resource(endpoint_url=self._endpoint_url or None).get_client()
        return self._client

    def key(self, seq: int, hash_: str) -> str:
        return f"{self.prefix}{seq:012d}-{hash_}.json"

    def take(self, record: dict[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(record["seq"], record["hash"])
        body = record_line(record).encode() + b"\n"
        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",  # S3 wants a checksum with Object Lock parameters
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
                IfNoneMatch="*",  # never a second version under a record's name
            )
        except ClientError as error:
            if _code(error) == "PreconditionFailed" and self._holds(key, body):
                return  # taken before (a retry after a lost answer): the same record, already locked
            raise WitnessError(f"{self.name} did not take it: {_code(error)} {_message(error)}") from None
        except BotoCoreError as error:
            raise WitnessError(f"{self.name} did not take it: {error}") from None

    def read(self) -> tuple[list[Witnessed], list[str]]:
        from botocore.exceptions import BotoCoreError, ClientError

        versions: dict[str, list[dict]] = defaultdict(list)
        deleted: dict[str, int] = defaultdict(int)
        try:
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for version in page.get("Versions", []):
                    versions[version["Key"]].append(version)  # S3 lists a key's versions newest first
                for marker in page.get("DeleteMarkers", []):
                    deleted[marker["Key"]] += 1
        except ClientError as error:
            raise WitnessError(f"cannot list {self.name}: {_code(error)} {_message(error)}") from None
        except BotoCoreError as error:
            raise WitnessError(f"cannot list {self.name}: {error}") from None
        records: list[Witnessed] = []
        problems: list[str] = []
        for key in sorted(versions):
            named = _OBJECT_NAME.fullmatch(key[len(self.prefix) :])
            if named is None:
                problems.append(f"object {key} is not a record of this witness (someone else wrote it)")
                continue
            first = versions[key][-1]
            if len(versions[key]) > 1:
                problems.append(
                    f"object {key} was written {len(versions[key])} times: someone tried to overwrite it; "
                    "its first, locked version is the one compared"
                )
            where, version = f"object {key} ({first['VersionId']})", first["VersionId"]
            records.append(Witnessed(int(named.group(1)), named.group(2), where, version=version))
        for key in sorted(deleted):
            problems.append(
                f"object {key} was deleted {deleted[key]} time(s): a delete marker hides it, its locked "
                "version remains and is the one compared"
            )
        return records, problems

    def content(self, witnessed: Witnessed) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(witnessed.seq, witnessed.hash)
        version = {"VersionId": witnessed.version} if witnessed.version else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, **version)["Body"].read()
        except (ClientError, BotoCoreError):
            return None
        record = _parse_record(body.decode("utf-8", "replace"))
        if record is None or (record["seq"], record["hash"]) != (witnessed.seq, witnessed.hash):
            return None
        return record if record_hash(record) == record["hash"] else None

    def _holds(self, key: str, body: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read() == body
        except (ClientError, BotoCoreError):
            return False


@dataclass
class Comparison:
    """What ``compare`` found between the local log and one witness."""

    name: str
    matched: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compare(
    local: Sequence[dict[str, Any]], witness: WitnessCopy, owed: Collection[tuple[int, str]] = ()
) -> Comparison:
    """Every record the local log and ``witness`` disagree on, by number and hash.

    - a record the witness holds and the local log does not (nor another of that number): **removed** locally;
    - a local record whose number the witness holds with another hash: **altered** (the differing fields
      named; records after an altered one differ in their ``prev`` link, and are named as rewritten);
    - a local record the witness does not hold: **added** locally, or, when the log says it still owes it to
      the witness (``owed``: its number and hash), one the witness did not take and the next append gives;
    - a record the witness holds besides the local one of the same number: sent to the witness by someone
      else, or a local record replaced and its replacement sent to the witness too.

    Local records older than the witness's first record predate it (the witness was configured later, or its
    copy begins later) and are not compared; a note says so.
    """
    result = Comparison(witness.name)
    try:
        held, result.problems = witness.read()
    except WitnessError as error:
        result.problems = [f"cannot be compared: {error}"]
        return result
    held_keys = {(item.seq, item.hash) for item in held}
    held_by_seq: dict[int, list[Witnessed]] = defaultdict(list)
    for item in held:
        if item not in held_by_seq[item.seq]:
            held_by_seq[item.seq].append(item)
    local = [record for record in local if isinstance(record.get("seq"), int) and "hash" in record]
    local_keys = {(record["seq"], record["hash"]) for record in local}
    local_by_seq = {record["seq"]: record for record in local}
    first = min(held_by_seq) if held_by_seq else None
    findings: list[tuple[int, str]] = []
    for record in local:
        seq, sha = record["seq"], record["hash"]
        if (seq, sha) in held_keys:
            result.matched += 1
        elif first is None or seq < first:
            continue  # predates the witness
        elif seq in held_by_seq:
            theirs = held_by_seq[seq][0]
            findings.append(
                (seq, f"record {seq} was altered: the local log's (hash {_short(sha)}) is not the one the "
                f"witness holds (hash {_short(theirs.hash)}); {_difference(record, witness.content(theirs))}")
            )  # fmt: skip
        elif (seq, sha) in owed:
            findings.append(
                (seq, f"record {seq} (hash {_short(sha)}) is in the local log but not at the witness yet: "
                "the witness did not take it when it was appended, and the next append gives it again")
            )  # fmt: skip
        else:
            findings.append(
                (seq, f"record {seq} (hash {_short(sha)}) is in the local log but not at the witness: added "
                "to the local log afterwards (or appended while this witness was not configured)")
            )  # fmt: skip
    for seq in sorted(held_by_seq):
        for item in held_by_seq[seq]:
            mine = local_by_seq.get(seq)
            if (seq, item.hash) in local_keys:
                continue
            if mine is None:
                findings.append(
                    (seq, f"record {seq} (hash {_short(item.hash)}, {item.where}) is at the witness but "
                    "missing from the local log: removed from it")
                )  # fmt: skip
            elif (seq, mine["hash"]) in held_keys:
                findings.append(
                    (seq, f"record {seq} (hash {_short(item.hash)}, {item.where}) is at the witness besides "
                    f"the local record {seq} (hash {_short(mine['hash'])}), which it holds too: sent to the "
                    "witness by someone else, or the local record was replaced and the replacement sent to "
                    f"the witness as well; {_difference(mine, witness.content(item))}")
                )  # fmt: skip
            # else: the local record of that number is not at the witness either: named above as altered
    result.problems += [message for _, message in sorted(findings, key=lambda finding: finding[0])]
    if first is None:
        if local:
            result.notes.append("holds no records yet: nothing to compare")
    elif local and min(local_by_seq) < first:
        result.notes.append(
            f"records {min(local_by_seq)}-{first - 1} predate its first record ({first}) and are not compared"
        )
    return result


def parse_syslog_address(address: str) -> tuple[str, int] | str:
    """``host:port`` or ``[v6]:port`` (TCP), or an absolute unix socket path; else ``ValueError``."""
    if address.startswith("/"):
        return address
    host, _, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host and port.isdigit() and 0 < int(port) < 65536 and not re.search(r"[\s/\[\]]", host):
        return host, int(port)
    raise BadSettingError(
        settings.AUDIT_SYSLOG, address, "host:port (TCP) or the path of a unix socket (/dev/log)"
    )


def parse_witness_uri(uri: str) -> tuple[str, str]:
    return parse_s3_uri(uri, settings.AUDIT_WITNESS_URI)


def _parse_record(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
        return None
    if not isinstance(record.get("hash"), str) or not _HASH.fullmatch(record["hash"]):
        return None
    return record


def _difference(local: dict[str, Any], theirs: dict[str, Any] | None) -> str:
    if theirs is None:
        return "the witness's content could not be read to say which fields differ"
    fields = sorted(
        name for name in set(local) | set(theirs) if name != "hash" and local.get(name) != theirs.get(name)
    )
    if fields == ["prev"]:
        return "only their link to the record before differs: rewritten to follow a record that was changed"
    if not fields:
        return "their content is the same"
    return "they differ in " + ", ".join(
        f"{name} ({_shown(theirs.get(name))} at the witness, {_shown(local.get(name))} locally)"
        for name in fields
    )


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(hash_: str) -> str:
    return f"{hash_[:12]}..."


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))
