"""How the summary writes its numbers, the same way in Markdown, HTML and email."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from esg_assets.defs.summary.trends import TrendWindow

MISSING = "n/a"


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
