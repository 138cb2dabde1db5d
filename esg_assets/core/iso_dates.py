"""Strict YYYY-MM-DD dates, as partition keys and the file's Analysis Date column are written."""

from __future__ import annotations

import re
from datetime import date

# ASCII digits only: \d would also accept other scripts' digits, which date.fromisoformat may take.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_iso_date(text: str) -> bool:
    """A real calendar date written exactly as YYYY-MM-DD (no week dates, no times, no other digits)."""
    if not _ISO_DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
