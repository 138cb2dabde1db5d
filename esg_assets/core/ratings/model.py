"""The values of one account's ratings and its Processing Status (api-contract section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class ProcessingStatus(StrEnum):
    SUCCESSFUL = "Successful"
    PARTIAL = "Partial"
    FAILED = "Failed"


@dataclass(frozen=True)
class RatingValues:
    """The six ESG values and the analysis date of a rating; ``None`` where the value is not usable.

    Scores are exact decimals already rounded half-up to two places.
    """

    overall: Decimal | None
    environmental: Decimal | None
    social: Decimal | None
    governance: Decimal | None
    primary_focus: str | None
    primary_focus_score: Decimal | None
    analysis_date: date | None
    problems: tuple[str, ...] = ()  # why each unusable value counts as missing, for the log

    @property
    def six_values(self) -> tuple:
        return (
            self.overall,
            self.environmental,
            self.social,
            self.governance,
            self.primary_focus,
            self.primary_focus_score,
        )

    @property
    def status(self) -> ProcessingStatus:
        usable = [v is not None for v in self.six_values]
        if all(usable) and self.analysis_date is not None:
            return ProcessingStatus.SUCCESSFUL
        if any(usable):
            return ProcessingStatus.PARTIAL
        return ProcessingStatus.FAILED


@dataclass(frozen=True)
class FetchTask:
    """An account to rate, with the rating (and its ETag) the warehouse already holds for it, if any."""

    account_id: str
    etag: str | None = None
    held: RatingValues | None = None


@dataclass(frozen=True)
class RatingResult:
    account_id: str
    values: RatingValues | None  # None when no rating was obtained
    status: ProcessingStatus
    error_reason: str | None
    attempts: int
    http_status: int | None
    etag: str | None
    not_modified: bool
    fetched_at: datetime
