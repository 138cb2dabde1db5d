"""The names of the day's files in a report store, where each published set is kept, and the rule every
stored name follows."""

from __future__ import annotations

import re
from datetime import date, datetime

# Plain names only: no separator, so a name can never reach outside the store; a leading dot is kept for
# the store's own temporary files, and 200 characters leave room for their prefix and suffix.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_EXTENSION = re.compile(r"[A-Za-z0-9]+(\.[A-Za-z0-9]+)*")
# Every name below: FirmESGRatings_YYYYMMDD..., FirmESGSummary_YYYYMMDD...
_DAY_FILE = re.compile(r"FirmESG(?:Ratings|Summary)_([0-9]{8})[._]")


def ratings_file_name(day: date) -> str:
    """``FirmESGRatings_YYYYMMDD.csv.enc``: the day's encrypted ratings file."""
    return f"FirmESGRatings_{_compact(day)}.csv.enc"


def errors_file_name(day: date) -> str:
    """``FirmESGRatings_YYYYMMDD_errors.csv.enc``: the day's accounts that did not end Successful."""
    return f"FirmESGRatings_{_compact(day)}_errors.csv.enc"


def summary_file_name(day: date, ext: str) -> str:
    """``FirmESGSummary_YYYYMMDD.<ext>``, ``ext`` without its leading dot (``csv``, ``csv.enc``)."""
    if not _EXTENSION.fullmatch(ext):
        raise ValueError(f"file extension {ext!r} must be letters and digits, without a leading dot")
    return f"FirmESGSummary_{_compact(day)}.{ext}"


def manifest_file_name(day: date) -> str:
    """``FirmESGRatings_YYYYMMDD.manifest.json``: the day's commit record, naming the set that is live."""
    return f"FirmESGRatings_{_compact(day)}.manifest.json"


def publishing_lock_name(day: date) -> str:
    """``publishing-YYYYMMDD.lock``: held by the run publishing the day: two runs never publish it at once."""
    return f"publishing-{_compact(day)}.lock"


def versions_folder(day: date) -> str:
    """``FirmESGRatings_YYYYMMDD.versions``: the folder holding each set of the day's files, one per run."""
    return f"FirmESGRatings_{_compact(day)}.versions"


def versioned_name(day: date, version: str, name: str) -> str:
    """Where ``name`` of the set ``version`` of ``day`` is stored: ``<versions folder>/<version>/<name>``."""
    return "/".join((versions_folder(day), check_file_name(version), check_file_name(name)))


def version_of_stored_name(day: date, stored: str) -> str | None:
    """The version a stored name of ``day`` belongs to; ``None`` for a name outside its versions folder."""
    parts = stored.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == versions_folder(day) else None


def day_of_file_name(name: str) -> date | None:
    """The day a file of the day belongs to, from its name; ``None`` for any other name."""
    match = _DAY_FILE.match(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def check_file_name(name: str) -> str:
    """Return ``name`` if it is a valid stored file name, else raise ``ValueError`` saying why."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid file name {name!r}: use 1-200 characters of A-Z a-z 0-9 . _ -, "
            "not starting with a dot and without '..'"
        )
    return name


MAX_DEPTH = 3  # <versions folder>/<version>/<file>


def check_stored_name(name: str) -> str:
    """Return ``name`` if a valid stored name (up to three valid file names joined by "/"), else raise."""
    parts = name.split("/") if isinstance(name, str) else [name]
    if len(parts) > MAX_DEPTH:
        raise ValueError(f"invalid file name {name!r}: at most {MAX_DEPTH} parts separated by '/'")
    for part in parts:
        check_file_name(part)
    return name


def _compact(day: date) -> str:
    # Not strftime("%Y"): it does not zero-pad years before 1000 on every platform.
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"
