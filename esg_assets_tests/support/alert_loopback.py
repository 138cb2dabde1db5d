"""Alert channels on loopback for the sensor tests: a TLS SMTP relay and PagerDuty, set by ESG_* settings.

The fixtures ``certificates`` and ``alert_servers`` that start both are in the root conftest.py."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import DagsterInstance, build_sensor_context

from esg_assets.config.environment import now
from esg_assets.config.resources import alerting, job_logs
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets_tests.support.pagerduty_server import PagerDutyServer
from esg_assets_tests.support.ports import free_port
from esg_assets_tests.support.smtp_server import SmtpServer

ROUTING_KEY = "R0ut1ngKey5ecret0123456789abcdef"
SMTP_USER = "esg-alerts"
SMTP_PASSWORD = "Pa55-w0rd-that-must-not-leak"
DEV = "dev@firm.example"
BUSINESS = "business@firm.example"
DAGSTER_UI = "https://dagster.firm.example"


@dataclass
class AlertServers:
    pagerduty: PagerDutyServer
    smtp: SmtpServer

    def triggers(self, dedup_key: str | None = None) -> list[dict]:
        return self._accepted("trigger", dedup_key)

    def resolves(self, dedup_key: str | None = None) -> list[dict]:
        return self._accepted("resolve", dedup_key)

    def mails(self, dedup_key: str | None = None) -> list:
        return [
            mail
            for mail in self.smtp.delivered
            if dedup_key is None or mail.message["X-ESG-Dedup-Key"] == dedup_key
        ]

    def open_incidents(self) -> set[str]:
        return set(self.pagerduty.state.open_incidents)

    def _accepted(self, action: str, dedup_key: str | None) -> list[dict]:
        return [
            event
            for event in self.pagerduty.state.accepted
            if event["event_action"] == action and (dedup_key is None or event["dedup_key"] == dedup_key)
        ]


def plain_text(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def alert_settings(pagerduty: PagerDutyServer, smtp: SmtpServer, certificates) -> dict[str, str]:
    """The ESG_* settings pointing the alerts at ``pagerduty`` and the STARTTLS+AUTH relay ``smtp``."""
    return {
        "ESG_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "ESG_PAGERDUTY_EVENTS_URL": pagerduty.events_url,
        "ESG_SMTP_HOST": "127.0.0.1",
        "ESG_SMTP_PORT": str(smtp.port),
        "ESG_SMTP_USER": SMTP_USER,
        "ESG_SMTP_PASSWORD": SMTP_PASSWORD,
        "ESG_SMTP_SECURITY": "starttls",
        "ESG_SMTP_CA_FILE": str(certificates.ca_file),
        "ESG_ALERT_EMAIL_FROM": "esg-job@firm.example",
        "ESG_ALERT_EMAIL_TO_DEV": DEV,
        "ESG_ALERT_EMAIL_TO_BUSINESS": BUSINESS,
        "ESG_DAGSTER_BASE_URL": DAGSTER_UI,
    }


def point_email_at_a_closed_port(monkeypatch) -> None:
    """The email channel down (connection refused) while PagerDuty stays up."""
    monkeypatch.setenv("ESG_SMTP_PORT", str(free_port()))


def ledger_from_env(instance: DagsterInstance) -> AlertLedger:
    """The ledger over the channels the ESG_* settings configure now, as the sensors' resources give it."""
    return alerting(now).ledger(instance)


def tick(sensor, **context):
    """One evaluation of ``sensor`` as the daemon would run it: a sensor context (``instance``, ``cursor``)
    opened with the resources the ESG_* settings give now."""
    with build_sensor_context(resources=sensor_resources(), **context) as opened:
        return sensor(opened)


def sensor_resources() -> dict:
    """The resources a sensor takes, from the ESG_* settings now (``build_sensor_context(resources=...)``)."""
    return {"alerting": alerting(now), "job_logs": job_logs(now)}


def dev_and_business_mails(servers: AlertServers, dedup_key: str) -> tuple:
    """The two emails of an alert meant for both audiences: the developers' (technical) and the business's
    (plain language); asserts there is exactly one of each."""
    mails = servers.mails(dedup_key)
    business = [mail for mail in mails if mail.message["X-ESG-Audience"] == "business"]
    dev = [mail for mail in mails if mail.message["X-ESG-Audience"] != "business"]
    assert len(dev) == 1 and len(business) == 1, [mail.recipients for mail in mails]
    assert dev[0].recipients == [DEV] and business[0].recipients == [BUSINESS]
    return dev[0], business[0]


def assert_plain_for_the_business(mail, run_id: str | None = None) -> None:
    """The business's email says what is late and when the next update comes, without the technical detail."""
    text = mail.message.get_body(("plain",)).get_content()
    assert "The next update comes by" in text or "is resolved" in text
    assert "runbook" not in text.lower() and "http" not in text
    if run_id:
        assert run_id not in text
