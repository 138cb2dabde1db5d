"""PagerDuty's Events API v2 as a resource: one JSON POST per event, retried on 429/5xx, the key never logged.

Not ``dagster_pagerduty.PagerDutyService``: it sends through the unmaintained ``pypd``, whose endpoint is the
process-wide class attribute ``pypd.EventV2.base_url`` (no per-resource URL for tests or the firm's proxy),
posts with no timeout, validates with ``assert`` (skipped under ``python -O``), turns a 429 or 5xx into an
exception with no retry, and logs every event, routing key included, at DEBUG. One JSON POST is simpler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from dagster import ConfigurableResource
from pydantic import Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from esg_assets.core import settings
from esg_assets.core.setting_values import flag, http_url, setting_check
from esg_assets.core.transport_security import require_secure_url

logger = logging.getLogger(__name__)

DEFAULT_EVENTS_URL = settings.PAGERDUTY_EVENTS_URL.default


class PagerDutyError(RuntimeError):
    """PagerDuty did not accept the event; ``attempts`` says how many posts were made."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class Accepted:
    status: int
    attempts: int


class _TransientFailure(Exception):
    """A 429, a 5xx or no answer at all: worth another attempt."""


class PagerDutyResource(ConfigurableResource):
    """Where events go and how hard to try; the routing key is a secret (``EnvVar``), empty turns it off."""

    routing_key: str = Field(default="", repr=False, description="Integration key of the service (secret).")
    events_url: str = DEFAULT_EVENTS_URL
    allow_insecure_http: str = "false"  # ESG_ALLOW_INSECURE_HTTP; text, as Dagster has no boolean EnvVar
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A sensor tick has about a minute: 3 attempts of at most 10 s plus 1 s + 2 s of backoff stay within it.
    max_attempts: int = Field(default=3, ge=1)
    backoff_seconds: float = Field(default=1.0, ge=0, description="Wait before the first retry; doubles.")

    _events_url = setting_check("events_url", settings.PAGERDUTY_EVENTS_URL, http_url)
    _insecure = setting_check("allow_insecure_http", settings.ALLOW_INSECURE_HTTP, flag)

    @property
    def enabled(self) -> bool:
        return bool(self.routing_key)

    def enqueue(self, event: dict[str, Any]) -> Accepted:
        """Posts ``event`` (its routing key added); raises ``PagerDutyError`` if PagerDuty did not take it."""
        try:  # the routing key is in the body: never over plain http to another host
            allowed = flag(settings.ALLOW_INSECURE_HTTP, self.allow_insecure_http)
            require_secure_url(settings.PAGERDUTY_EVENTS_URL.name, self.events_url, allowed)
        except ValueError as error:
            raise PagerDutyError(str(error), 0) from None
        body = {"routing_key": self.routing_key, **event}
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=30),
            retry=retry_if_exception_type(_TransientFailure),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(self._post, body)
        except _TransientFailure as failure:
            attempts = retrying.statistics.get("attempt_number", self.max_attempts)
            raise PagerDutyError(f"gave up after {attempts} attempts: {failure}", attempts) from None
        attempts = retrying.statistics.get("attempt_number", 1)
        if response.status_code == 400:
            errors = self.masked(str(_json_field(response, "errors")))
            logger.error(
                "PagerDuty rejected the event as invalid: %s",
                errors,
                extra={"event": "pagerduty_invalid_event", "dedup_key": event.get("dedup_key")},
            )
            raise PagerDutyError(f"400 invalid event, not retried: {errors}", attempts)
        if not response.ok:
            raise PagerDutyError(f"HTTP {response.status_code}, not retried", attempts)
        return Accepted(response.status_code, attempts)

    def masked(self, text: str) -> str:
        # Belt and braces: whatever PagerDuty or a proxy echoes back, the routing key is never logged.
        return text.replace(self.routing_key, "[REDACTED]") if self.routing_key else text

    def _post(self, body: dict[str, Any]) -> requests.Response:
        try:
            response = requests.post(self.events_url, json=body, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            raise _TransientFailure(self.masked(f"{type(exc).__name__}: {exc}")) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _TransientFailure(f"HTTP {response.status_code}")
        return response

    def _log_retry(self, state: RetryCallState) -> None:
        logger.warning(
            "PagerDuty attempt %d of %d failed (%s); retrying",
            state.attempt_number,
            self.max_attempts,
            state.outcome.exception() if state.outcome else "unknown",
            extra={"event": "pagerduty_retry"},
        )


def _json_field(response: requests.Response, name: str) -> Any:
    try:
        return response.json().get(name)
    except (ValueError, AttributeError):
        return response.text[:500]
