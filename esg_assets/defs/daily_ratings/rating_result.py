"""One account's outcome for the day: the fetch turned into the values and status stored in the warehouse."""

from __future__ import annotations

from datetime import date, datetime, timezone

from esg_assets.core.ratings.model import FetchTask, ProcessingStatus, RatingResult, RatingValues
from esg_assets.core.ratings.rating_values import rating_values
from esg_assets.lib.firm_api.esg import RatingFetch


def rating_result(task: FetchTask, fetch: RatingFetch, as_of: date) -> RatingResult:
    """Apply api-contract section 4 to a fetch: a rating obtained (200, or 304 with a held one) or not."""
    values: RatingValues | None = None
    error = fetch.error
    if fetch.not_modified:
        if task.held is None:
            error = "HTTP 304 for a rating this job does not hold"
        else:
            values = task.held
    elif fetch.body is not None:
        values = rating_values(fetch.body, as_of=as_of)

    if values is None:
        status = ProcessingStatus.FAILED
        reason = error or "no rating obtained"
    else:
        status = values.status
        reason = None
        if status is ProcessingStatus.FAILED:
            reason = "no usable value: " + "; ".join(values.problems)
        elif status is ProcessingStatus.PARTIAL:
            reason = "; ".join(values.problems)
    return RatingResult(
        account_id=task.account_id,
        values=values,
        status=status,
        error_reason=reason,
        attempts=fetch.attempts,
        http_status=fetch.http_status,
        etag=fetch.etag if values is not None else None,
        not_modified=fetch.not_modified and values is not None,
        fetched_at=datetime.now(timezone.utc),
    )
