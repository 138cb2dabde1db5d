"""A report store in an S3 bucket: streamed multipart uploads, SHA-256 checksums, server-side encryption on
top of the files' own, and conditional writes so an older run never silently replaces a newer run's file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from esg_assets.core import settings
from esg_assets.core.file_names import check_file_name, check_stored_name
from esg_assets.core.setting_values import BadSettingError, one_of
from esg_assets.lib.report_store.locks import LockedError

SSE_MODES = ("aws:kms", "AES256")
PART_SIZE = 8 * 1024 * 1024  # memory held per upload; S3 wants at least 5 MiB for every part but the last
RUN_ID_METADATA = "esg-run-id"
RUN_STARTED_METADATA = "esg-run-started-at"

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
STALE_LOCK_AFTER = timedelta(hours=5)  # a daily run is stopped after 4 hours (run monitoring)


class StalePublicationError(Exception):
    """The object was published by a run that started after this one: this run must not replace it."""


class ConcurrentPublicationError(Exception):
    """The object changed between the check before the upload and its completion: nothing was replaced."""


@dataclass(frozen=True)
class S3Options:
    """How objects are written: the endpoint, and the server-side encryption added to the client-side one."""

    endpoint_url: str = ""
    sse: str = settings.S3_SSE.default
    sse_kms_key_id: str = ""

    def __post_init__(self):
        one_of(settings.S3_SSE, self.sse, SSE_MODES)
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise BadSettingError(
                settings.S3_SSE_KMS_KEY_ID,
                self.sse_kms_key_id,
                f"empty unless {settings.S3_SSE.name} is aws:kms",
            )


@dataclass(frozen=True)
class Publication:
    """The run that publishes: its id and start time go into each object's metadata and are compared first."""

    run_id: str
    started_at: datetime  # aware


class S3ReportStore:
    """``ReportStore`` over ``s3://bucket/prefix``, with a client from ``dagster_aws.s3.S3Resource``.

    An object appears under its name only when its upload completes (S3 makes a completed PutObject or
    multipart upload visible at once, whole), so a reader never sees part of a file.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        options: S3Options = S3Options(),
        publication: Publication | None = None,
        part_size: int = PART_SIZE,
    ):
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._options = options
        self._publication = publication
        self._part_size = part_size

    def __repr__(self) -> str:
        return f"S3ReportStore({self.uri('')!r})"

    @contextmanager
    def publish(self, name: str) -> Iterator[BinaryIO]:
        """See ``ReportStore.publish``. Refuses, before writing, to replace an object of a later run.

        The write is conditional on what was checked: ``If-None-Match: *`` when there was no object,
        ``If-Match: <its ETag>`` when there was one, so an object replaced meanwhile is not overwritten.
        """
        key = self._key(name)
        previous = self._head(key)
        self._refuse_if_newer(name, previous)
        condition = {"IfMatch": previous["ETag"]} if previous else {"IfNoneMatch": "*"}
        upload = _StreamedUpload(self._client, self.bucket, key, self._object_arguments(), self._part_size)
        try:
            yield upload
            upload.complete(condition)
        except ClientError as error:
            upload.abort()
            if _code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConcurrentPublicationError(
                    f"{self.uri(name)} changed while this run published it; the other writer's object stays"
                ) from None
            raise OSError(f"cannot publish {self.uri(name)}: {_code(error)}") from None
        except BaseException:
            upload.abort()
            raise

    def open(self, name: str) -> BinaryIO:
        key = self._key(name)
        try:
            # ChecksumMode makes botocore check the object's SHA-256 as the body is read (single-part objects;
            # a multipart object's checksum covers its parts, and the manifest holds the whole file's hash).
            response = self._client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                raise FileNotFoundError(f"{self.uri(name)} does not exist") from None
            raise OSError(f"cannot read {self.uri(name)}: {_code(error)}") from None
        return response["Body"]

    def exists(self, name: str) -> bool:
        return self._head(self._key(name)) is not None

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def delete(self, name: str) -> None:
        """Removes the object and, in a versioned bucket, every earlier version: retention means gone."""
        key = self._key(name)
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if version["Key"] == key:
                    self._client.delete_object(Bucket=self.bucket, Key=key, VersionId=version["VersionId"])

    def list(self, prefix: str = "") -> list[str]:
        names = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if _is_stored_name(name):
                    names.append(name)
        return sorted(names)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """See ``ReportStore.exclusive``: an object ``<name>``, created only if absent (``If-None-Match: *``).

        A lock older than ``STALE_LOCK_AFTER`` (longer than a run may last) was left by a run that died: it is
        taken over, once, and the takeover is conditional on the stale object's ETag.
        """
        key = self._key(check_file_name(name))
        holder = {
            "holder": self._publication.run_id if self._publication else "esg-report",
            "since": _now_iso(),
        }
        if not self._create_lock(key, holder):
            current = self._head(key)
            since = _lock_since(current)
            if current is None or since is None or datetime.now(UTC) - since < STALE_LOCK_AFTER:
                metadata = (current or {}).get("Metadata", {})
                raise LockedError(
                    f"{self.uri(name)} is held by {metadata.get('holder', 'another process')} since "
                    f"{metadata.get('since', 'an unknown time')}"
                )
            self._client.delete_object(Bucket=self.bucket, Key=key)
            if not self._create_lock(key, holder):
                raise LockedError(
                    f"{self.uri(name)} was taken by another process as this one took over a stale lock"
                )
        try:
            yield
        finally:
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def _create_lock(self, key: str, holder: dict[str, str]) -> bool:
        try:
            arguments = {**self._object_arguments(), "Metadata": holder}
            self._client.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*", **arguments)
        except ClientError as error:
            if _code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def subfolders(self, name: str) -> list[str]:
        """Folders under ``name``: those with objects and those only an unfinished multipart upload began."""
        folder = self._key(name) + "/"
        found = set()
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder, Delimiter="/"
        ):
            found |= {item["Prefix"][len(folder) :].rstrip("/") for item in page.get("CommonPrefixes", [])}
        for upload in self._uploads(folder):
            found.add(upload["Key"][len(folder) :].split("/", 1)[0])
        return sorted(part for part in found if part and not part.startswith("."))

    def delete_folder(self, name: str) -> None:
        """Every version of every object under ``name``, and the parts of unfinished uploads there."""
        folder = self._key(name) + "/"
        for page in self._client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=folder
        ):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                self._client.delete_object(
                    Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                )
        for upload in self._uploads(folder):
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )

    def _uploads(self, prefix: str) -> list[dict]:
        uploads = []
        for page in self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            uploads += page.get("Uploads", [])
        return uploads

    def _key(self, name: str) -> str:
        return self.prefix + check_stored_name(name)

    def _head(self, key: str) -> dict | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise

    def _refuse_if_newer(self, name: str, previous: dict | None) -> None:
        if previous is None or self._publication is None:
            return
        metadata = previous.get("Metadata", {})
        try:
            their_start = datetime.fromisoformat(metadata[RUN_STARTED_METADATA])
        except (KeyError, ValueError):
            return  # written outside a run (or before this metadata existed): nothing to compare with
        ours = self._publication
        if their_start > ours.started_at and metadata.get(RUN_ID_METADATA) != ours.run_id:
            raise StalePublicationError(
                f"{self.uri(name)} was published by run {metadata.get(RUN_ID_METADATA)}, which started at "
                f"{their_start.isoformat()}, after this run ({ours.run_id}, started "
                f"{ours.started_at.isoformat()}); an older run does not replace a newer run's file"
            )

    def _object_arguments(self) -> dict:
        arguments: dict[str, Any] = {
            "ServerSideEncryption": self._options.sse,
            "ChecksumAlgorithm": "SHA256",
            "ContentType": "application/octet-stream",
        }
        if self._options.sse_kms_key_id:
            arguments["SSEKMSKeyId"] = self._options.sse_kms_key_id
        if self._publication is not None:
            arguments["Metadata"] = {
                RUN_ID_METADATA: self._publication.run_id,
                RUN_STARTED_METADATA: self._publication.started_at.isoformat(),
            }
        return arguments


class _StreamedUpload:
    """The writer ``S3ReportStore.publish`` yields: at most one part in memory, sent as soon as it is full.

    A file smaller than one part goes up in one PutObject; a larger one as a multipart upload, started when
    the first part fills. Either is made visible only by ``complete``.
    """

    def __init__(self, client: Any, bucket: str, key: str, arguments: dict, part_size: int):
        self._client = client
        self._target = {"Bucket": bucket, "Key": key}
        self._arguments = arguments
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            self._send_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return len(memoryview(data).cast("B"))

    def flush(self) -> None:
        """Nothing to do: a part is sent when full, and the object only exists once complete."""

    def complete(self, condition: dict) -> None:
        if self._upload_id is None:
            self._client.put_object(**self._target, **self._arguments, **condition, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._send_part(bytes(self._buffer))
            self._buffer.clear()
        self._client.complete_multipart_upload(
            **self._target, **condition, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None

    def abort(self) -> None:
        """Drops the parts sent so far (S3 would otherwise keep, and bill, them)."""
        self._buffer.clear()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._client.abort_multipart_upload(**self._target, UploadId=upload_id)
            except ClientError:
                pass  # the original failure matters more; a bucket lifecycle rule removes stale uploads

    def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(**self._target, **self._arguments)[
                "UploadId"
            ]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            **self._target, UploadId=self._upload_id, PartNumber=number, Body=data, ChecksumAlgorithm="SHA256"
        )
        self._parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": response["ChecksumSHA256"]}
        )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _lock_since(head: dict | None) -> datetime | None:
    try:
        return datetime.fromisoformat((head or {})["Metadata"]["since"])
    except (KeyError, ValueError, TypeError):
        return None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_stored_name(name: str) -> bool:
    try:
        check_stored_name(name)
    except ValueError:  # an object some other tool put under the prefix: not one of the store's files
        return False
    return True
