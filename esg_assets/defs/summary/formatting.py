"""How the summary writes its numbers, the same way in Markdown, HTML and email."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from esg_assets.defs.summary.trends import TrendWindow

MISSING = "n/a"

CHECKS_NOTE = (
    "All four checks ran before the day's files were published. completeness and file_format are blocking: "
    "the files are published only when both pass, so a published summary always shows them passed (a failure "
    "publishes nothing and fails the run)."
)


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def signed_count(value: int) -> str:
    return f"{value:+,}"


def percent(rate: float | None) -> str:
    return MISSING if rate is None else f"{rate:.2%}"


def share(part: int, total: int) -> str:
    return percent(part / total) if total else MISSING


def score(value: Decimal | float | None) -> str:
    if value is None:
        return "N/A"  # the file's own word for a missing score
    return f"{value:.2f}"


def signed_score(value: Decimal) -> str:
    return f"{value:+.2f}"


def score_change(current: Decimal | None, previous: Decimal | None) -> str:
    return MISSING if current is None or previous is None else signed_score(current - previous)


def points_change(current: float | None, previous: float | None) -> str:
    """A rate's change in percentage points, e.g. ``+0.35 pts``."""
    if current is None or previous is None:
        return MISSING
    return f"{(current - previous) * 100:+.2f} pts"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def per_second(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f}/s"


def day(value: date | None) -> str:
    return MISSING if value is None else value.isoformat()


def trend_value(window: TrendWindow, name: str) -> str:
    """A window's mean of one TREND_METRICS entry, written the way that metric reads."""
    value = window.means[name]
    if name.endswith("_rate"):
        return percent(value)
    if name == "duration_seconds":
        return duration(value)
    if name == "throughput_per_second":
        return per_second(value)
    return score(value)


def size(value: int | None) -> str:
    """Bytes in binary units, e.g. ``182.3 MiB``; exact below 1 KiB."""
    if value is None:
        return MISSING
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{value:,} B" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return MISSING  # not reached


def cpu_seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f} s"


def check_outcome(passed: bool) -> str:
    return "passed" if passed else "FAILED"


def check_number(value: object) -> str:
    """One of a check's numbers as the summary writes it: a float to six significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
