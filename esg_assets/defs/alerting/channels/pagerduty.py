"""Alerts to PagerDuty through the Events API v2 (api-contract.md section 5), posted with ``requests``.

Not ``dagster_pagerduty.PagerDutyService``: it sends through the unmaintained ``pypd``, whose endpoint is the
process-wide class attribute ``pypd.EventV2.base_url`` (no per-resource URL for tests or the firm's proxy),
posts with no timeout, validates with ``assert`` (skipped under ``python -O``), turns a 429 or 5xx into an
exception with no retry, and logs every event, routing key included, at DEBUG. One JSON POST is simpler.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from dagster import ConfigurableResource
from pydantic import Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult
from esg_assets.lib.firm_api.transport_security import insecure_http_allowed, require_secure_url

logger = logging.getLogger(__name__)

CHANNEL = "pagerduty"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY_CHARS = 1024
MAX_DEDUP_KEY_CHARS = 255


class _TransientFailure(Exception):
    """A 429, a 5xx or no answer at all: worth another attempt."""


class PagerDutyAlerts(ConfigurableResource):
    """Where PagerDuty events go and how hard to try; the routing key is a secret (``EnvVar``)."""

    routing_key: str = Field(repr=False, description="Integration key of the PagerDuty service (secret).")
    events_url: str = DEFAULT_EVENTS_URL
    source: str = Field(default="esg-ratings-dagster", description="payload.source: the system in trouble.")
    component: str = "esg_daily_job"
    group: str = "esg-ratings"
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A sensor tick has about a minute: 3 attempts of at most 10 s plus 1 s + 2 s of backoff stay within it.
    max_attempts: int = Field(default=3, ge=1)
    backoff_seconds: float = Field(default=1.0, ge=0, description="Wait before the first retry; doubles.")

    def send(self, alert: Alert, run_url: str | None = None) -> DeliveryResult:
        """Posts the event of ``alert``; raises ``AlertChannelError`` when PagerDuty did not accept it."""
        try:  # the routing key is in the body: never over plain http to another host
            require_secure_url("ESG_PAGERDUTY_EVENTS_URL", self.events_url, insecure_http_allowed())
        except ValueError as error:  # an http URL to another host, or a bad ESG_ALLOW_INSECURE_HTTP
            raise AlertChannelError(CHANNEL, str(error), 0) from None
        event = self.event_for(alert, run_url)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=30),
            retry=retry_if_exception_type(_TransientFailure),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(self._post, event)
        except _TransientFailure as failure:
            attempts = retrying.statistics.get("attempt_number", self.max_attempts)
            reason = f"gave up after {attempts} attempts: {failure}"
            raise AlertChannelError(CHANNEL, reason, attempts) from None
        attempts = retrying.statistics.get("attempt_number", 1)
        if response.status_code == 400:
            errors = self._masked(str(_json_field(response, "errors")))
            logger.error(
                "PagerDuty rejected the event as invalid: %s",
                errors,
                extra={"event": "pagerduty_invalid_event", "dedup_key": alert.dedup_key},
            )
            raise AlertChannelError(CHANNEL, f"400 invalid event, not retried: {errors}", attempts)
        if not response.ok:
            raise AlertChannelError(CHANNEL, f"HTTP {response.status_code}, not retried", attempts)
        return DeliveryResult(CHANNEL, True, f"HTTP {response.status_code} for {alert.dedup_key}", attempts)

    def event_for(self, alert: Alert, run_url: str | None = None) -> dict[str, Any]:
        """The Events API v2 body of ``alert`` (contract section 5); a resolve needs no payload."""
        event: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": alert.action,
            "dedup_key": alert.dedup_key[:MAX_DEDUP_KEY_CHARS],
        }
        if alert.action == "trigger":
            event["payload"] = {
                "summary": _truncate(alert.headline, MAX_SUMMARY_CHARS),
                "source": self.source,
                "severity": alert.severity,
                "timestamp": alert.detected_at.isoformat(timespec="seconds"),
                "component": self.component,
                "group": self.group,
                "class": alert.kind,
                "custom_details": {
                    **alert.details,
                    "partition": alert.partition,
                    "run_id": alert.run_id,
                    "run_url": run_url,
                    "runbook_step": alert.runbook_step,
                },
            }
        return event

    def _post(self, event: dict[str, Any]) -> requests.Response:
        try:
            response = requests.post(self.events_url, json=event, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            raise _TransientFailure(self._masked(f"{type(exc).__name__}: {exc}")) from None
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

    def _masked(self, text: str) -> str:
        # Belt and braces: whatever PagerDuty or a proxy echoes back, the routing key is never logged.
        return text.replace(self.routing_key, "[REDACTED]") if self.routing_key else text


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_field(response: requests.Response, name: str) -> Any:
    try:
        return response.json().get(name)
    except (ValueError, AttributeError):
        return response.text[:500]
