"""Alerts as PagerDuty events (api-contract.md section 5), sent through ``lib/pagerduty``."""

from __future__ import annotations

from typing import Any

from esg_assets.core.support_page import SHIPPED_SUPPORT_PAGE
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult
from esg_assets.lib.pagerduty.events_api import PagerDutyError, PagerDutyResource

CHANNEL = "pagerduty"
MAX_SUMMARY_CHARS = 1024
MAX_DEDUP_KEY_CHARS = 255


class PagerDutyAlerts:
    """The PagerDuty channel: an alert becomes an Events API v2 event, posted by ``pagerduty``."""

    def __init__(
        self,
        pagerduty: PagerDutyResource,
        source: str = "esg-ratings-dagster",  # payload.source: the system in trouble
        component: str = "esg_daily_job",
        group: str = "esg-ratings",
        support_url: str = SHIPPED_SUPPORT_PAGE,
    ):
        self.pagerduty = pagerduty
        self.source = source
        self.component = component
        self.group = group
        self.support_url = support_url

    def send(self, alert: Alert, run_url: str | None = None) -> DeliveryResult:
        """Posts the event of ``alert``; raises ``AlertChannelError`` when PagerDuty did not accept it."""
        try:
            accepted = self.pagerduty.enqueue(self.event_for(alert, run_url))
        except PagerDutyError as error:
            raise AlertChannelError(CHANNEL, error.reason, error.attempts) from None
        return DeliveryResult(
            CHANNEL, True, f"HTTP {accepted.status} for {alert.dedup_key}", accepted.attempts
        )

    def event_for(self, alert: Alert, run_url: str | None = None) -> dict[str, Any]:
        """``alert``'s Events API v2 body (contract section 5) sans routing key; a resolve has no payload."""
        event: dict[str, Any] = {
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
                    "support": self.support_url,
                },
            }
            if self.support_url.startswith(("https://", "http://")):
                # Events API v2 "links": PagerDuty shows them on the incident as clickable.
                event["links"] = [
                    {"href": self.support_url, "text": "How to raise a question or an incident"}
                ]
        return event


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
