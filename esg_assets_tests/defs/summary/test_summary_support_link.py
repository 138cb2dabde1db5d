"""The daily summary links the support page (ESG_SUPPORT_URL): its Markdown, its HTML page and its email."""

from __future__ import annotations

from datetime import date

import pytest

from esg_assets.config.environment import now
from esg_assets.config.resources import summary_email
from esg_assets.defs.summary.summary_html import to_html
from esg_assets.defs.summary.summary_markdown import to_markdown
from esg_assets.defs.summary.summary_report import build_summary_report
from esg_assets_tests.support.alert_loopback import plain_text
from esg_assets_tests.support.warehouses import warehouse_at

pytestmark = pytest.mark.integration

SUPPORT = "https://intranet.firm.example/esg/support"
DAY = date(2026, 11, 24)


def a_report(tmp_path, support_url: str | None = None):
    with warehouse_at(tmp_path / "warehouse.duckdb").connect() as connection:
        if support_url is None:
            return build_summary_report(connection, DAY, "run-today")
        return build_summary_report(connection, DAY, "run-today", support_url=support_url)


def test_markdown_and_html_end_with_the_support_link(tmp_path):
    report = a_report(tmp_path, SUPPORT)

    assert to_markdown(report).endswith(f"\nQuestions, or an incident to report: {SUPPORT}\n")
    assert f'Questions, or an incident to report: <a href="{SUPPORT}">{SUPPORT}</a></p>' in to_html(
        report, []
    )


def test_without_a_published_page_they_name_the_page_shipped_with_the_job(tmp_path):
    report = a_report(tmp_path)

    assert "Questions, or an incident to report: docs/support.md" in to_markdown(report)
    page = to_html(report, [])
    assert "Questions, or an incident to report: docs/support.md</p>" in page
    assert 'href="docs/support.md"' not in page  # a relative link would point nowhere in a mailbox


def test_the_summary_email_carries_the_link_of_the_setting(tmp_path, alert_servers, monkeypatch):
    monkeypatch.setenv("ESG_SUMMARY_EMAIL_TO", "compliance@firm.example")
    monkeypatch.setenv("ESG_SUPPORT_URL", SUPPORT)
    resource = summary_email(now)

    delivery = resource.send(a_report(tmp_path, resource.support_url), [])

    assert delivery.status == "sent", delivery.detail
    [mail] = alert_servers.mails()
    assert SUPPORT in plain_text(mail)
    assert f'<a href="{SUPPORT}">{SUPPORT}</a>' in mail.message.get_body(("html",)).get_content()


def test_a_support_url_that_is_not_a_web_address_fails_naming_the_setting(monkeypatch):
    monkeypatch.setenv("ESG_SUPPORT_URL", "intranet/support")
    with pytest.raises(
        Exception, match="Setting ESG_SUPPORT_URL must be an http\\(s\\) URL, or docs/support.md"
    ):
        summary_email(now)
