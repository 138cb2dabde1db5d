"""The support page that every alert and the daily summary link to: how to raise a question or an incident."""

from __future__ import annotations

from esg_assets.core.settings import SUPPORT_URL

# The page shipped with the job; ESG_SUPPORT_URL names where the firm publishes it.
SHIPPED_SUPPORT_PAGE: str = SUPPORT_URL.default  # type: ignore[assignment]


def support_line(url: str) -> str:
    """The one line each message carries, in the same words everywhere."""
    return f"Questions, or an incident to report: {url}"
