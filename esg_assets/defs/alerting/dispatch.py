"""Delivers an alert on every configured channel independently; fails loudly only when none delivered."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from dagster import EnvVar

from esg_assets.core import settings
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult
from esg_assets.defs.alerting.channels.email import EmailAlerts
from esg_assets.defs.alerting.channels.pagerduty import PagerDutyAlerts

logger = logging.getLogger("esg_assets.alerts")

AlertChannel = PagerDutyAlerts | EmailAlerts
_ENV_VAR_TYPES = (EnvVar, type(EnvVar.int("ESG_UNUSED")))  # EnvVar.int() makes a separate (int) class


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
            with _with_env_vars_read(name, channel) as ready:
                result = ready.send(alert, run_url=run_url)
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


@contextmanager
def _with_env_vars_read(name: str, channel: AlertChannel) -> Iterator[AlertChannel]:
    """The channel with its ``EnvVar`` fields (the secrets) replaced by their values.

    Dagster does this for the resources it injects; a dispatcher built from ``alert_resources_from_env()``
    outside a run holds the variable names. A missing variable fails this channel only, naming it.
    """
    values = [getattr(channel, field) for field in type(channel).model_fields]
    env_vars = [value for value in values if isinstance(value, _ENV_VAR_TYPES)]
    if not env_vars:
        yield channel
        return
    missing = [value.env_var_name for value in env_vars if not os.environ.get(value.env_var_name)]
    if missing:
        raise AlertChannelError(name, f"setting {', '.join(missing)} is not set")
    # The _cm variant closes the throwaway Dagster instance it initializes the resource with.
    with channel.process_config_and_initialize_cm() as ready:
        yield ready


class AlertChannels(NamedTuple):
    """The alert resources the settings configure; None for a channel that is switched off."""

    pagerduty: PagerDutyAlerts | None
    email: EmailAlerts | None


def alert_resources_from_env() -> AlertChannels:
    """The channels from the settings: PagerDuty when a routing key is set, email when an SMTP host is set.

    Secrets stay ``EnvVar``s. Once the SMTP host is set, the sender and the dev recipients are required:
    they are passed as ``EnvVar``s too, so a missing one fails the email channel naming the variable.
    """
    pagerduty = None
    if settings.PAGERDUTY_ROUTING_KEY.value():
        pagerduty = PagerDutyAlerts(
            routing_key=settings.PAGERDUTY_ROUTING_KEY.config(),
            events_url=settings.PAGERDUTY_EVENTS_URL.config(),
        )
    email = None
    if settings.SMTP_HOST.value():
        email = EmailAlerts(
            host=settings.SMTP_HOST.config(),
            port=settings.SMTP_PORT.int_config(),
            user=settings.SMTP_USER.config(),
            password=settings.SMTP_PASSWORD.config(),
            security=settings.SMTP_SECURITY.config(),
            ca_file=settings.SMTP_CA_FILE.config(),
            from_address=EnvVar(settings.ALERT_EMAIL_FROM.name),
            to_dev=EnvVar(settings.ALERT_EMAIL_TO_DEV.name),
            to_business=settings.ALERT_EMAIL_TO_BUSINESS.config(),
        )
    return AlertChannels(pagerduty, email)


def alert_dispatcher_from_env() -> AlertDispatcher:
    """A dispatcher over the channels the settings configure, linking runs under ``ESG_DAGSTER_BASE_URL``."""
    channels = alert_resources_from_env()
    return AlertDispatcher(channels.pagerduty, channels.email, settings.DAGSTER_BASE_URL.value())
