"""The day's summary by email to ESG_SUMMARY_EMAIL_TO, over the job's SMTP relay (lib/smtp), charts inline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.setting_values import setting_check, support_page
from esg_assets.defs.summary.charts import Chart
from esg_assets.defs.summary.summary_html import to_html
from esg_assets.defs.summary.summary_markdown import to_markdown
from esg_assets.defs.summary.summary_report import SummaryReport
from esg_assets.lib.smtp.relay import SmtpDeliveryError, SmtpRelayResource

# A mailbox is not the place for a long list: the email names the first failed accounts, the files the rest.
FAILED_ACCOUNTS_IN_EMAIL = 50

SENT, OFF, FAILED = "sent", "off", "failed"


@dataclass(frozen=True)
class SummaryDelivery:
    status: str  # SENT, OFF (no recipients configured) or FAILED
    detail: str  # for the log and the materialization metadata; never holds the SMTP password
    recipients: int = 0


class SummaryEmailResource(ConfigurableResource):
    """Who gets the daily summary (ESG_SUMMARY_EMAIL_TO; empty: nobody), over the job's SMTP relay, and the
    support page the summary links to (ESG_SUPPORT_URL)."""

    smtp: SmtpRelayResource
    to: str = ""
    support_url: str = settings.SUPPORT_URL.default  # type: ignore[assignment]

    _support_url = setting_check("support_url", settings.SUPPORT_URL, support_page)

    def recipients(self) -> list[str]:
        addresses = (address.strip() for address in self.to.split(","))
        return list(dict.fromkeys(address for address in addresses if address))

    def send(self, report: SummaryReport, charts: list[Chart]) -> SummaryDelivery:
        """Sends the summary when recipients are configured; reports a failure instead of raising it."""
        recipients = self.recipients()
        if not recipients:
            return SummaryDelivery(OFF, f"{settings.SUMMARY_EMAIL_TO.name} is empty")
        if not self.smtp.enabled:
            return SummaryDelivery(
                FAILED, f"{settings.SUMMARY_EMAIL_TO.name} is set but {settings.SMTP_HOST.name} is empty", 0
            )
        try:
            refused = self.smtp.send(summary_email(report, charts, self.smtp.sender, recipients))
        except Exception as error:  # a summary that cannot be mailed must not fail the day's files
            reason = (
                str(error) if isinstance(error, SmtpDeliveryError) else f"{type(error).__name__}: {error}"
            )
            return SummaryDelivery(FAILED, self.smtp.masked(reason), len(recipients))
        delivered = len(recipients) - len(refused)
        detail = f"sent to {delivered} of {len(recipients)} recipients via {self.smtp.host}:{self.smtp.port}"
        return SummaryDelivery(SENT if delivered else FAILED, detail, delivered)


def summary_email(
    report: SummaryReport, charts: list[Chart], sender: str, recipients: list[str]
) -> EmailMessage:
    """HTML with the charts as inline (cid:) images, which mail clients show; many block data: URIs."""
    summary = report.summary
    message = EmailMessage()
    message["Subject"] = (
        f"ESG ratings summary {summary.partition_date.isoformat()}: {summary.success_rate:.2%} successful, "
        f"{summary.failed_total:,} failed"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # RFC 3834: out-of-office and other auto-responders do not answer an automated message.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(to_markdown(report))  # Markdown reads as plain text
    content_ids = {chart.name: make_msgid(idstring=chart.name) for chart in charts}
    message.add_alternative(
        to_html(
            report,
            charts,
            image_source=lambda chart: "cid:" + content_ids[chart.name][1:-1],
            failed_accounts_shown=FAILED_ACCOUNTS_IN_EMAIL,
        ),
        subtype="html",
    )
    html_part = message.get_payload()[1]
    for chart in charts:
        html_part.add_related(
            chart.png,
            maintype="image",
            subtype="png",
            cid=content_ids[chart.name],
            filename=f"{chart.name}.png",
        )
    return message
