"""An ``s3://bucket/prefix`` setting, parsed strictly: a bucket name and a prefix of safe parts."""

from __future__ import annotations

import re

from esg_assets.core.setting_values import BadSettingError
from esg_assets.core.settings import OUTPUT_URI, Setting

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]+")


def parse_s3_uri(uri: str, setting: Setting = OUTPUT_URI) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` -> (bucket, "" or "prefix/"); else ``BadSettingError`` naming ``setting``."""
    rest = uri[len("s3://") :] if uri.lower().startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    parts = [part for part in prefix.split("/") if part]
    if (
        not _BUCKET.fullmatch(bucket)
        or any(not _PREFIX_PART.fullmatch(part) or part in (".", "..") for part in parts)
        or "//" in prefix.rstrip("/")
    ):
        raise BadSettingError(
            setting, uri, "a valid S3 location, s3://bucket/prefix (prefix parts of A-Z a-z 0-9 . _ -)"
        )
    return bucket, "".join(f"{part}/" for part in parts)
