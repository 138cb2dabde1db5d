"""The interface of a report store and the choice of backend from ESG_OUTPUT_URI."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from esg_assets.core.s3_locations import parse_s3_uri
from esg_assets.core.setting_values import BadSettingError
from esg_assets.core.settings import OUTPUT_URI
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.s3 import Publication, S3Options, S3ReportStore

# Any "scheme:" prefix marks a URI: a mistyped one (file:relative) is refused, not taken as a directory.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@runtime_checkable
class ReportStore(Protocol):
    """Where the day's files are published. Names are file names, or up to three joined by "/" (see
    ``check_stored_name``)."""

    def publish(self, name: str) -> AbstractContextManager[BinaryIO]:
        """A binary file to write ``name`` into; it appears under ``name`` only if the block ends cleanly.

        On a clean exit the data is made durable and replaces any previous file of that name in one step;
        on an exception nothing is published and the previous file stays as it was.
        """
        ...

    def open(self, name: str) -> BinaryIO:
        """The stored file for reading; ``FileNotFoundError`` when there is none."""
        ...

    def exists(self, name: str) -> bool: ...

    def uri(self, name: str) -> str:
        """Where the file is (or would be), for messages and logs."""
        ...

    def delete(self, name: str) -> None:
        """Remove the file; nothing happens when it does not exist."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """The stored names that start with ``prefix``, in folders too, sorted."""
        ...

    def subfolders(self, name: str) -> list[str]:
        """The names of the folders directly in ``name``, including one only a killed writer left."""
        ...

    def delete_folder(self, name: str) -> None:
        """Remove the folder ``name`` and everything in it, killed writers' unfinished writes included."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Hold the lock ``name`` for the block; ``LockedError`` at once when another process holds it.

        A process that dies releases it (locally at once; on S3 when it is older than a run can be).
        """
        ...


def report_store_for(
    uri: str,
    s3_options: S3Options | None = None,
    publication: Publication | None = None,
    s3_client: Callable[[], Any] | None = None,
) -> ReportStore:
    """The store an ESG_OUTPUT_URI value names: ``file:///abs/dir``, a path (relative to the cwd) or
    ``s3://bucket/prefix``; anything else raises ``ValueError`` naming the setting.

    For S3: ``s3_options`` (default: AWS's endpoint, SSE-KMS with the bucket's key), ``publication`` names the
    run that writes (see ``S3ReportStore.publish``), ``s3_client`` makes the client (``S3Resource.get_client``
    of the resource set; without it, one for ``s3_options.endpoint_url``).
    """
    match = _SCHEME.match(uri)
    if match is None:
        if not uri.strip():
            raise BadSettingError(OUTPUT_URI, uri, "file:///abs/dir, a directory path or s3://bucket/prefix")
        return LocalReportStore(Path(uri).absolute())
    scheme = match.group(1).lower()
    if scheme == "file":
        parts = urlsplit(uri)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/") or parts.query or parts.fragment:
            raise BadSettingError(OUTPUT_URI, uri, "a local file URI, file:///abs/dir")
        return LocalReportStore(Path(path))
    if scheme == "s3":
        bucket, prefix = parse_s3_uri(uri)
        options = s3_options or S3Options()
        if s3_client is None:
            from dagster_aws.s3 import S3Resource  # a second of import: only for a store of s3:// output

            s3_client = S3Resource(endpoint_url=options.endpoint_url or None).get_client
        return S3ReportStore(s3_client(), bucket, prefix, options, publication)
    raise BadSettingError(OUTPUT_URI, uri, "file:///abs/dir, a directory path or s3://bucket/prefix")
