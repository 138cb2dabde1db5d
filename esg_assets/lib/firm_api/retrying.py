"""Retry scheduling shared by the clients: transient statuses, Retry-After and backoff with full jitter."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_random_exponential

# The statuses the contract calls transient (api-contract sections 2 and 3); every other 4xx/5xx is final.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

# Floor of every retry delay: a "Retry-After: 0" or a jitter draw near zero must not turn into a tight loop.
MIN_RETRY_DELAY = 0.1

_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, from delta-seconds or an HTTP-date.

    ``None`` when the header is absent or unreadable (the caller then relies on its own backoff);
    a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class Outcome(Protocol):
    """What one attempt tells the scheduler."""

    @property
    def transient(self) -> bool: ...  # worth another attempt

    @property
    def retry_after(self) -> float | None: ...  # seconds the server asked us to wait, if it said


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


def asks_too_long(outcome: Outcome, backoff_max: float) -> bool:
    """The server wants a longer pause than we are willing to wait before a retry."""
    return outcome.retry_after is not None and outcome.retry_after > backoff_max


def call_with_retries(
    attempt: Callable[[], OutcomeT],
    *,
    max_attempts: int,
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    on_retry: Callable[[OutcomeT, float], None] | None = None,
) -> tuple[OutcomeT, int]:
    """Run ``attempt`` until its outcome is final or ``max_attempts`` are spent; return the last outcome and
    the number of attempts made.

    The delay before attempt n+1 is the larger of full-jitter exponential backoff (uniform in
    ``[0, min(backoff_max, backoff_base * 2**(n-1))]``), the server's ``Retry-After`` and
    ``MIN_RETRY_DELAY``. A server asking for more than ``backoff_max`` ends the retries: we neither come
    back earlier than asked nor stall a worker for an unbounded time. Exceptions raised by ``attempt``
    propagate unchanged (they are not per-request problems).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    attempts = 0

    def counted_attempt() -> OutcomeT:
        nonlocal attempts
        attempts += 1
        return attempt()

    backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)

    def delay(retry_state) -> float:
        outcome = retry_state.outcome.result()
        return max(MIN_RETRY_DELAY, backoff(retry_state), outcome.retry_after or 0.0)

    def before_sleep(retry_state) -> None:
        if on_retry is not None:
            on_retry(retry_state.outcome.result(), retry_state.next_action.sleep)

    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        retry=retry_if_result(lambda outcome: outcome.transient and not asks_too_long(outcome, backoff_max)),
        wait=delay,
        sleep=sleep,
        before_sleep=before_sleep,
        # When attempts run out, hand back the last outcome instead of raising tenacity.RetryError.
        retry_error_callback=lambda retry_state: retry_state.outcome.result(),
    )
    outcome = retrying(counted_attempt)
    return outcome, attempts
