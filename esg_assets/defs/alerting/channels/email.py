"""Alerts by email, through the firm's SMTP relay (``lib/smtp``): every alert to dev, some to the business."""

from __future__ import annotations

import logging

from esg_assets.core import settings
from esg_assets.core.support_page import SHIPPED_SUPPORT_PAGE
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.channels.email_message import alert_email, business_email
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult
from esg_assets.lib.smtp.relay import SmtpDeliveryError, SmtpRelayResource

logger = logging.getLogger(__name__)

CHANNEL = "email"


class EmailAlerts:
    """The email channel: who gets which alerts (comma-separated lists), sent over ``relay``."""

    def __init__(
        self,
        relay: SmtpRelayResource,
        to_dev: str,
        to_business: str = "",
        support_url: str = SHIPPED_SUPPORT_PAGE,
    ):
        self.relay = relay
        self.to_dev = to_dev
        self.to_business = to_business
        self.support_url = support_url

    def recipients_for(self, alert: Alert) -> tuple[list[str], list[str]]:
        """The dev list always (the technical email); the business list too, for an alert meant for the
        business, minus anyone on the dev list (the plain-language email)."""
        dev = _addresses(self.to_dev)
        business = _addresses(self.to_business) if alert.audience == "business_and_dev" else []
        return dev, [address for address in business if address not in dev]

    def send(self, alert: Alert, run_url: str | None = None) -> DeliveryResult:
        """Sends the alert email; raises ``AlertChannelError`` with a reason that never holds the password."""
        if not self.to_dev.strip():
            raise AlertChannelError(
                CHANNEL, f"{settings.SMTP_HOST.name} is set but {settings.ALERT_EMAIL_TO_DEV.name} is empty"
            )
        dev, business = self.recipients_for(alert)
        recipients = dev + business
        try:
            refused = self.relay.send(alert_email(alert, run_url, self.relay.sender, dev, self.support_url))
            # Not delivered unless the business got theirs too: the alert is then retried (the developers may
            # get it twice; the business never misses it).
            if business:
                refused |= self.relay.send(
                    business_email(alert, self.relay.sender, business, self.support_url)
                )
        except SmtpDeliveryError as error:
            raise AlertChannelError(CHANNEL, str(error)) from None
        if refused:
            logger.warning(
                "alert email refused for %d of %d recipients",
                len(refused),
                len(recipients),
                extra={"event": "email_recipients_refused", "dedup_key": alert.dedup_key},
            )
        return DeliveryResult(CHANNEL, True, f"sent to {len(recipients) - len(refused)} recipients")


def _addresses(line: str) -> list[str]:
    return list(dict.fromkeys(address.strip() for address in line.split(",") if address.strip()))
