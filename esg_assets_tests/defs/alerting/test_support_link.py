"""Every alert message links the support page (ESG_SUPPORT_URL): the developers' and the business's emails and
the PagerDuty event, as delivered to PagerDuty and a TLS relay on loopback."""

from __future__ import annotations

import pytest

from esg_assets.config.environment import now
from esg_assets.config.resources import alerting
from esg_assets.core.setting_values import setting_problem
from esg_assets.defs.alerting.alert import Alert
from esg_assets_tests.support.alert_loopback import BUSINESS, DEV, plain_text

SUPPORT = "https://intranet.firm.example/esg/support"


def an_alert(**changes) -> Alert:
    fields = dict(
        kind="run_failure",
        partition="2026-11-24",
        severity="critical",
        summary="the daily run failed in esg_ratings",
        run_id="0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
        audience="business_and_dev",
        runbook_step="Open the run link and read the error of the first failed step.",
    )
    return Alert(**{**fields, **changes})


def html_part(mail) -> str:
    return mail.message.get_body(("html",)).get_content()


@pytest.mark.integration
def test_the_dev_email_the_business_email_and_the_pagerduty_event_link_the_support_page(
    alert_servers, monkeypatch
):
    monkeypatch.setenv("ESG_SUPPORT_URL", SUPPORT)
    alerting(now).dispatcher().deliver(an_alert())

    [event] = alert_servers.pagerduty.state.accepted
    assert event["links"] == [{"href": SUPPORT, "text": "How to raise a question or an incident"}]
    assert event["payload"]["custom_details"]["support"] == SUPPORT
    mails = {tuple(mail.recipients): mail for mail in alert_servers.mails()}
    for audience in (DEV, BUSINESS):
        mail = mails[(audience,)]
        assert SUPPORT in plain_text(mail), audience
        assert f'<a href="{SUPPORT}">{SUPPORT}</a>' in html_part(mail), audience


@pytest.mark.integration
def test_a_resolve_links_the_support_page_too(alert_servers, monkeypatch):
    monkeypatch.setenv("ESG_SUPPORT_URL", SUPPORT)
    resolve = an_alert(
        kind="resolved", action="resolve", resolves="run_failure", severity="info", runbook_step=""
    )
    alerting(now).dispatcher().deliver(resolve)

    assert len(alert_servers.mails()) == 2
    for mail in alert_servers.mails():
        assert SUPPORT in plain_text(mail)


@pytest.mark.integration
def test_unset_the_messages_name_the_page_shipped_with_the_job(alert_servers, monkeypatch):
    monkeypatch.delenv("ESG_SUPPORT_URL", raising=False)
    alerting(now).dispatcher().deliver(an_alert())

    dev, business = alert_servers.mails()
    assert "Support: docs/support.md" in plain_text(dev)
    assert "Questions, or an incident to report: docs/support.md" in plain_text(business)
    [event] = alert_servers.pagerduty.state.accepted
    assert event["payload"]["custom_details"]["support"] == "docs/support.md"
    assert "links" not in event  # PagerDuty links need an address a browser can open


@pytest.mark.unit
@pytest.mark.parametrize("value", ["intranet/support", "ftp://firm.example/support", "javascript:alert(1)"])
def test_a_support_url_that_is_not_a_web_address_is_refused_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("ESG_SUPPORT_URL", value)
    with pytest.raises(Exception) as raised:
        alerting(now)
    message = setting_problem(raised.value)
    assert message.startswith("Setting ESG_SUPPORT_URL must be an http(s) URL, or docs/support.md, got ")
    assert repr(value) in message
