"""``s3://bucket/prefix`` locations, as ESG_OUTPUT_URI and ESG_AUDIT_WITNESS_URI give them."""

from __future__ import annotations

import re

from esg_assets.core import settings

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]+")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` -> (bucket, prefix ending with "/" or ""); else ``ValueError``."""
    rest = uri[len("s3://") :] if uri.lower().startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    parts = [part for part in prefix.split("/") if part]
    if (
        not _BUCKET.fullmatch(bucket)
        or any(not _PREFIX_PART.fullmatch(part) or part in (".", "..") for part in parts)
        or "//" in prefix.rstrip("/")
    ):
        raise ValueError(
            f"{settings.OUTPUT_URI.name}={uri!r} is not a valid S3 location; expected s3://bucket/prefix "
            "(prefix parts of A-Z a-z 0-9 . _ -)"
        )
    return bucket, "".join(f"{part}/" for part in parts)
