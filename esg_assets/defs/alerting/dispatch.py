"""Delivers an alert on every configured channel independently; fails loudly only when none delivered."""

from __future__ import annotations

import logging

from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.channels.email import EmailAlerts
from esg_assets.defs.alerting.channels.pagerduty import PagerDutyAlerts
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult

logger = logging.getLogger("esg_assets.alerts")

AlertChannel = PagerDutyAlerts | EmailAlerts


class AlertNotDelivered(RuntimeError):
    """No channel delivered the alert (or none is configured): the sensor fails and tries again next tick."""

    def __init__(self, alert: Alert, results: list[DeliveryResult]):
        reasons = "; ".join(f"{r.channel}: {r.detail}" for r in results) or "no alert channel is configured"
        super().__init__(f"alert {alert.dedup_key} not delivered: {reasons}")
        self.results = results


class AlertDispatcher:
    """Sends each alert to PagerDuty and email; a channel that is down does not stop the other."""

    def __init__(self, pagerduty: PagerDutyAlerts | None, email: EmailAlerts | None, dagster_base_url: str):
        candidates: list[tuple[str, AlertChannel | None]] = [("pagerduty", pagerduty), ("email", email)]
        self._channels = [(name, channel) for name, channel in candidates if channel is not None]
        self._dagster_base_url = dagster_base_url

    def deliver(self, alert: Alert) -> list[DeliveryResult]:
        """One result per configured channel; raises ``AlertNotDelivered`` when none delivered."""
        run_url = alert.run_url(self._dagster_base_url)
        results = [self._deliver_on(name, channel, alert, run_url) for name, channel in self._channels]
        if not any(result.delivered for result in results):
            raise AlertNotDelivered(alert, results)
        return results

    def _deliver_on(
        self, name: str, channel: AlertChannel, alert: Alert, run_url: str | None
    ) -> DeliveryResult:
        context = {"channel": name, "dedup_key": alert.dedup_key, "partition": alert.partition}
        try:
            result = channel.send(alert, run_url=run_url)
        except Exception as exc:  # whatever breaks one channel must not keep the alert off the other
            reason = exc.reason if isinstance(exc, AlertChannelError) else f"{type(exc).__name__}: {exc}"
            attempts = exc.attempts if isinstance(exc, AlertChannelError) else 1
            logger.error(
                "alert %s not delivered by %s: %s",
                alert.dedup_key,
                name,
                reason,
                extra={"event": "alert_delivery_failed", "reason": reason, **context},
            )
            return DeliveryResult(name, False, reason, attempts)
        logger.info(
            "alert %s delivered by %s",
            alert.dedup_key,
            name,
            extra={"event": "alert_delivered", "attempts": result.attempts, **context},
        )
        return result
