"""One audit record in its canonical form: the JSON line the log and its witnesses hold, and its hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def record_line(record: dict[str, Any]) -> str:
    """The record as the local log holds it: one canonical JSON line (ASCII, no line break)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its own hash, in one canonical JSON form."""
    content = {name: value for name, value in record.items() if name != "hash"}
    return hashlib.sha256(record_line(content).encode()).hexdigest()
