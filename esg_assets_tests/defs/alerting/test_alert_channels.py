"""Alerts reach PagerDuty and a TLS SMTP relay on loopback; one dead channel never silences both."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from esg_assets.config.environment import now
from esg_assets.config.resources import alerting, dagster_resources
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.channels.email import EmailAlerts
from esg_assets.defs.alerting.channels.pagerduty import PagerDutyAlerts
from esg_assets.defs.alerting.delivery import AlertChannelError
from esg_assets.defs.alerting.dispatch import AlertDispatcher, AlertNotDelivered
from esg_assets.lib.pagerduty.events_api import PagerDutyResource
from esg_assets.lib.smtp.relay import SmtpRelayResource
from esg_assets_tests.support.pagerduty_server import PagerDutyServer
from esg_assets_tests.support.smtp_server import SmtpServer

ROUTING_KEY = "R0ut1ngKey5ecret0123456789abcdef"
SMTP_USER = "esg-alerts"
SMTP_PASSWORD = "Pa55-w0rd-that-must-not-leak"
SECRETS = (ROUTING_KEY, SMTP_PASSWORD)
DAGSTER_UI = "http://127.0.0.1:3000"
DEV = "dev-one@firm.example, dev-two@firm.example"
BUSINESS = "business@firm.example"


def an_alert(**changes) -> Alert:
    fields = dict(
        kind="failure_rate",
        partition="2026-11-24",
        severity="error",
        summary="12.5% of accounts failed (limit 5%)",
        details={"accounts_total": 2000, "accounts_failed": 250, "failure_rate": 0.125},
        run_id="0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
        runbook_step="Open the run's esg_ratings step and read the most frequent error.",
    )
    return Alert(**{**fields, **changes})


def a_resolve_of(kind: str) -> Alert:
    return an_alert(kind="resolved", action="resolve", resolves=kind, severity="info", runbook_step="")


def plain_text(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


@pytest.fixture(autouse=True)
def every_log_line(caplog):
    # DEBUG and up, so the checks that no secret is logged see every line the channels write.
    caplog.set_level(logging.DEBUG)


@pytest.fixture
def pagerduty():
    with PagerDutyServer() as server:
        yield server


@pytest.fixture
def smtp_starttls(certificates):
    with SmtpServer(certificates, SMTP_USER, SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def smtp_ssl(certificates):
    with SmtpServer(certificates, SMTP_USER, SMTP_PASSWORD, implicit_tls=True) as server:
        yield server


def pagerduty_alerts(server: PagerDutyServer, **changes) -> PagerDutyAlerts:
    fields = dict(routing_key=ROUTING_KEY, events_url=server.events_url, backoff_seconds=0, timeout_seconds=5)
    return PagerDutyAlerts(PagerDutyResource(**{**fields, **changes}))


def email_alerts(server: SmtpServer, certificates, **changes) -> EmailAlerts:
    fields = dict(
        host="127.0.0.1",
        port=server.port,
        user=SMTP_USER,
        password=SMTP_PASSWORD,
        security="starttls",
        sender="esg-job@firm.example",
        ca_file=str(certificates.ca_file),
        timeout_seconds=5,
    )
    return EmailAlerts(SmtpRelayResource(**{**fields, **changes}), to_dev=DEV, to_business=BUSINESS)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- the alert itself -------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["run_failure", "not_started", "deadline", "failure_rate"])
def test_dedup_key_names_the_day_and_the_kind(kind):
    assert an_alert(kind=kind).dedup_key == f"esg-2026-11-24-{kind}"


@pytest.mark.unit
def test_a_resolve_carries_the_dedup_key_of_the_alert_it_closes():
    assert a_resolve_of("deadline").dedup_key == "esg-2026-11-24-deadline"


@pytest.mark.unit
def test_run_url_links_the_run_in_the_dagster_ui_or_is_none_without_a_run():
    assert an_alert().run_url(DAGSTER_UI + "/") == f"{DAGSTER_UI}/runs/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
    assert an_alert(run_id=None).run_url(DAGSTER_UI) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"partition": "2026-02-30"}, "partition"),
        ({"severity": "fatal"}, "severity"),
        ({"summary": "two\nlines"}, "summary"),
        ({"details": {"account_name": "Harbor Pension Trust"}}, "account_name"),
        ({"details": {"client_secret": "x"}}, "client_secret"),
        ({"runbook_step": ""}, "runbook"),
        ({"action": "resolve"}, "resolve"),
    ],
)
def test_an_invalid_alert_is_refused_when_built(changes, complaint):
    with pytest.raises(ValueError, match=complaint):
        an_alert(**changes)


# --- PagerDuty --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_trigger_is_accepted_by_pagerduty_with_the_contract_payload(pagerduty):
    alert = an_alert()
    result = pagerduty_alerts(pagerduty).send(alert, run_url=alert.run_url(DAGSTER_UI))

    assert result.delivered and result.attempts == 1
    [event] = pagerduty.state.accepted
    assert event["event_action"] == "trigger" and event["dedup_key"] == "esg-2026-11-24-failure_rate"
    payload = event["payload"]
    assert payload["summary"] == "ESG ratings 2026-11-24: 12.5% of accounts failed (limit 5%)"
    assert payload["severity"] == "error" and payload["class"] == "failure_rate"
    assert payload["source"] and payload["component"] and payload["group"]
    assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    details = payload["custom_details"]
    assert details["accounts_failed"] == 250 and details["failure_rate"] == 0.125
    assert details["run_url"] == f"{DAGSTER_UI}/runs/{alert.run_id}"
    assert details["runbook_step"] == alert.runbook_step
    assert list(pagerduty.state.open_incidents) == ["esg-2026-11-24-failure_rate"]


@pytest.mark.integration
def test_a_repeated_trigger_adds_to_the_open_incident_and_a_resolve_closes_it(pagerduty):
    channel = pagerduty_alerts(pagerduty)
    channel.send(an_alert())
    channel.send(an_alert())
    assert len(pagerduty.state.open_incidents["esg-2026-11-24-failure_rate"]) == 2

    channel.send(a_resolve_of("failure_rate"))
    assert pagerduty.state.open_incidents == {}


@pytest.mark.integration
def test_a_summary_longer_than_pagerduty_allows_is_truncated(pagerduty):
    pagerduty_alerts(pagerduty).send(an_alert(summary="x" * 3000))
    assert len(pagerduty.state.accepted[0]["payload"]["summary"]) == 1024


@pytest.mark.integration
def test_429_and_500_are_retried_until_pagerduty_accepts(pagerduty):
    pagerduty.state.fail_next(429, 1)
    pagerduty.state.fail_next(500, 1)

    result = pagerduty_alerts(pagerduty, max_attempts=3).send(an_alert())

    assert result.delivered and result.attempts == 3
    assert pagerduty.state.requests_seen == 3 and len(pagerduty.state.accepted) == 1


@pytest.mark.integration
def test_pagerduty_down_for_every_attempt_is_reported_after_the_last_one(pagerduty):
    pagerduty.state.fail_next(503, 10)
    with pytest.raises(AlertChannelError, match="gave up after 3 attempts: HTTP 503"):
        pagerduty_alerts(pagerduty, max_attempts=3).send(an_alert())
    assert pagerduty.state.requests_seen == 3


@pytest.mark.integration
def test_an_invalid_event_is_not_retried_and_its_errors_are_logged_without_the_key(pagerduty, caplog):
    bad_key = ROUTING_KEY[:-1]  # 31 characters: PagerDuty answers 400

    with pytest.raises(AlertChannelError, match="400 invalid event") as error:
        pagerduty_alerts(pagerduty, routing_key=bad_key).send(an_alert())

    assert pagerduty.state.requests_seen == 1
    assert "routing_key' is incorrect" in error.value.reason
    assert "routing_key' is incorrect" in caplog.text
    assert bad_key not in caplog.text + str(error.value)


# --- email ------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_an_alert_email_goes_over_starttls_with_login_to_the_dev_list(smtp_starttls, certificates):
    alert = an_alert()
    result = email_alerts(smtp_starttls, certificates).send(alert, run_url=alert.run_url(DAGSTER_UI))

    assert result.delivered
    [mail] = smtp_starttls.delivered
    assert mail.recipients == ["dev-one@firm.example", "dev-two@firm.example"]
    assert mail.message["Subject"] == "[ERROR] ESG ratings 2026-11-24: 12.5% of accounts failed (limit 5%)"
    text = plain_text(mail)
    for expected in ("2026-11-24", "accounts_failed: 250", "failure_rate: 0.125", alert.runbook_step):
        assert expected in text
    assert f"{DAGSTER_UI}/runs/{alert.run_id}" in text
    assert "<table>" in mail.message.get_body(("html",)).get_content()
    assert_no_secrets(mail.raw.decode())


# The relay's own warning: it cannot tell that an implicit-TLS connection is encrypted (see smtp_server.py).
@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_alert_email_goes_over_implicit_tls(smtp_ssl, certificates):
    email_alerts(smtp_ssl, certificates, security="ssl").send(an_alert())
    assert len(smtp_ssl.delivered) == 1


@pytest.mark.integration
def test_business_recipients_get_only_alerts_meant_for_the_business(smtp_starttls, certificates):
    channel = email_alerts(smtp_starttls, certificates)
    channel.send(an_alert(audience="dev"))
    channel.send(an_alert(audience="business_and_dev"))

    dev_only, dev_of_both, business = smtp_starttls.delivered
    assert BUSINESS not in dev_only.recipients
    assert dev_of_both.recipients == ["dev-one@firm.example", "dev-two@firm.example"]
    assert business.recipients == [BUSINESS]  # a message of its own, in plain words
    text = plain_text(business)
    assert text.startswith("ESG ratings for 2026-11-24: the day's ESG ratings file is published, but more")
    assert "The next update comes by" in text and "Central" in text
    for technical in ("runbook", "0f1e2d3c", "failure_rate (error)", "accounts_failed"):
        assert technical not in text
    assert "Open the run's esg_ratings step" in plain_text(dev_of_both)  # the developers keep the detail


@pytest.mark.integration
def test_an_alert_the_business_did_not_get_is_not_delivered_so_it_is_tried_again(smtp_starttls, certificates):
    smtp_starttls.refuse(BUSINESS)  # the business mailbox is gone; the developers' relay path works
    channel = email_alerts(smtp_starttls, certificates)
    with pytest.raises(AlertChannelError, match="550"):
        channel.send(an_alert(audience="business_and_dev"))
    assert [mail.recipients for mail in smtp_starttls.delivered] == [
        ["dev-one@firm.example", "dev-two@firm.example"]
    ]  # the developers got theirs; the failure keeps the alert pending in the ledger


@pytest.mark.integration
def test_a_wrong_password_is_a_clear_error_that_does_not_quote_it(smtp_starttls, certificates):
    wrong = "wrong-" + SMTP_PASSWORD
    with pytest.raises(AlertChannelError, match="rejected the login") as error:
        email_alerts(smtp_starttls, certificates, password=wrong).send(an_alert())
    assert wrong not in str(error.value) and SMTP_PASSWORD not in str(error.value)
    assert smtp_starttls.delivered == []


@pytest.mark.integration
def test_a_relay_certificate_from_an_unknown_ca_is_refused(smtp_starttls, certificates):
    # Verification is on by default: without the private CA the relay's certificate is not trusted.
    with pytest.raises(AlertChannelError, match="not trusted"):
        email_alerts(smtp_starttls, certificates, ca_file="").send(an_alert())
    assert smtp_starttls.delivered == []


@pytest.mark.unit
def test_no_tls_is_refused_for_a_relay_that_is_not_on_loopback():
    relay = SmtpRelayResource(host="smtp.firm.example", security="none", sender="j@f.example")
    channel = EmailAlerts(relay, to_dev=DEV)
    with pytest.raises(AlertChannelError, match="only allowed for a loopback relay"):
        channel.send(an_alert())


# --- the dispatcher ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_both_channels_deliver(pagerduty, smtp_starttls, certificates):
    email = email_alerts(smtp_starttls, certificates)
    results = AlertDispatcher(pagerduty_alerts(pagerduty), email, DAGSTER_UI).deliver(an_alert())
    assert [(r.channel, r.delivered) for r in results] == [("pagerduty", True), ("email", True)]
    assert pagerduty.state.accepted[0]["payload"]["custom_details"]["run_url"].startswith(DAGSTER_UI)


@pytest.mark.integration
def test_with_the_relay_down_pagerduty_still_delivers_and_the_failure_is_logged(
    pagerduty, smtp_starttls, certificates, caplog
):
    email = email_alerts(smtp_starttls, certificates)
    smtp_starttls.stop()

    results = AlertDispatcher(pagerduty_alerts(pagerduty), email, DAGSTER_UI).deliver(an_alert())

    assert [(r.channel, r.delivered) for r in results] == [("pagerduty", True), ("email", False)]
    assert len(pagerduty.state.accepted) == 1
    [failure] = [r for r in caplog.records if getattr(r, "event", None) == "alert_delivery_failed"]
    assert failure.name == "esg_assets.alerts" and failure.channel == "email"
    assert "ConnectionRefusedError" in failure.reason
    assert_no_secrets(caplog.text)


@pytest.mark.integration
def test_with_pagerduty_failing_the_email_still_goes_and_the_failure_is_logged(
    pagerduty, smtp_starttls, certificates, caplog
):
    pagerduty.state.fail_next(500, 100)

    email = email_alerts(smtp_starttls, certificates)
    results = AlertDispatcher(pagerduty_alerts(pagerduty), email, DAGSTER_UI).deliver(an_alert())

    assert [(r.channel, r.delivered) for r in results] == [("pagerduty", False), ("email", True)]
    assert len(smtp_starttls.delivered) == 1
    [failure] = [r for r in caplog.records if getattr(r, "event", None) == "alert_delivery_failed"]
    assert failure.channel == "pagerduty" and "HTTP 500" in failure.reason
    assert_no_secrets(caplog.text)


@pytest.mark.integration
def test_with_both_channels_down_the_alert_is_not_delivered(pagerduty, smtp_starttls, certificates, caplog):
    pagerduty.state.fail_next(500, 100)
    email = email_alerts(smtp_starttls, certificates)
    smtp_starttls.stop()

    with pytest.raises(AlertNotDelivered, match="esg-2026-11-24-failure_rate") as error:
        AlertDispatcher(pagerduty_alerts(pagerduty), email, DAGSTER_UI).deliver(an_alert())

    assert {r.channel for r in error.value.results} == {"pagerduty", "email"}
    assert_no_secrets(caplog.text + str(error.value))


@pytest.mark.unit
def test_with_no_channel_configured_the_alert_is_not_delivered():
    with pytest.raises(AlertNotDelivered, match="no alert channel is configured"):
        AlertDispatcher(None, None, DAGSTER_UI).deliver(an_alert())


# --- resources from the settings ----------------------------------------------------------------------


@pytest.fixture
def alert_environment(monkeypatch):
    for name in (
        "ESG_PAGERDUTY_ROUTING_KEY",
        "ESG_PAGERDUTY_EVENTS_URL",
        "ESG_SMTP_HOST",
        "ESG_SMTP_PORT",
        "ESG_SMTP_USER",
        "ESG_SMTP_PASSWORD",
        "ESG_SMTP_SECURITY",
        "ESG_SMTP_CA_FILE",
        "ESG_ALERT_EMAIL_FROM",
        "ESG_ALERT_EMAIL_TO_DEV",
        "ESG_ALERT_EMAIL_TO_BUSINESS",
        "ESG_DAGSTER_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.unit
def test_a_channel_without_its_settings_is_off(alert_environment):
    resource = alerting(now)
    assert not resource.pagerduty.enabled and not resource.smtp.enabled
    with pytest.raises(AlertNotDelivered, match="no alert channel is configured"):
        resource.dispatcher().deliver(an_alert())


@pytest.mark.integration
def test_channels_from_the_settings_deliver_with_their_secrets_read_from_the_environment(
    alert_environment, pagerduty, smtp_starttls, certificates
):
    env = alert_environment
    env.setenv("ESG_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    env.setenv("ESG_PAGERDUTY_EVENTS_URL", pagerduty.events_url)
    env.setenv("ESG_SMTP_HOST", "127.0.0.1")
    env.setenv("ESG_SMTP_PORT", str(smtp_starttls.port))
    env.setenv("ESG_SMTP_USER", SMTP_USER)
    env.setenv("ESG_SMTP_PASSWORD", SMTP_PASSWORD)
    env.setenv("ESG_SMTP_CA_FILE", str(certificates.ca_file))
    env.setenv("ESG_ALERT_EMAIL_FROM", "esg-job@firm.example")
    env.setenv("ESG_ALERT_EMAIL_TO_DEV", DEV)
    env.setenv("ESG_DAGSTER_BASE_URL", "https://dagster.firm.example")

    code_location = dagster_resources()
    assert_no_secrets(
        repr(code_location["alerting"])
    )  # secrets stay EnvVars, never values in the definitions
    assert_no_secrets(repr(code_location["pagerduty"]) + repr(code_location["smtp"]))
    results = alerting(now).dispatcher().deliver(an_alert())

    assert all(r.delivered for r in results) and len(results) == 2
    assert pagerduty.state.accepted[0]["routing_key"] == ROUTING_KEY
    assert "https://dagster.firm.example/runs/" in plain_text(smtp_starttls.delivered[0])


@pytest.mark.integration
def test_an_email_channel_missing_its_sender_fails_naming_the_setting(
    alert_environment, smtp_starttls, certificates, caplog
):
    alert_environment.setenv("ESG_SMTP_HOST", "127.0.0.1")
    alert_environment.setenv("ESG_ALERT_EMAIL_TO_DEV", DEV)

    with pytest.raises(AlertNotDelivered, match="ESG_ALERT_EMAIL_FROM"):
        alerting(now).dispatcher().deliver(an_alert())
    assert "ESG_ALERT_EMAIL_FROM" in caplog.text
