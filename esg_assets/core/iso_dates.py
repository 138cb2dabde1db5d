"""Strict YYYY-MM-DD dates, as partition keys, API dates and the file's Analysis Date column are written."""

from __future__ import annotations

import re
from datetime import date

# ASCII digits only: \d would also accept other scripts' digits, which date.fromisoformat may take. The
# pattern is needed as well as fromisoformat, which alone also takes "20261121" and week dates ("2026-W47-6").
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # use with fullmatch


def parse_iso_date(text: str) -> date:
    """The date ``text`` writes exactly as YYYY-MM-DD; ``ValueError`` otherwise, an impossible date too."""
    if not ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def is_iso_date(text: str) -> bool:
    """A real calendar date written exactly as YYYY-MM-DD (no week dates, no times, no other digits)."""
    try:
        parse_iso_date(text)
    except ValueError:
        return False
    return True
