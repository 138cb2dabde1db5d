"""The day's summary by email to ESG_SUMMARY_EMAIL_TO, over the alert emails' SMTP relay, charts inline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from esg_assets.core import settings
from esg_assets.defs.alerting.channels.email import EmailAlerts
from esg_assets.defs.summary.charts import Chart
from esg_assets.defs.summary.summary_html import to_html
from esg_assets.defs.summary.summary_markdown import to_markdown
from esg_assets.defs.summary.summary_report import SummaryReport

# A mailbox is not the place for a long list: the email names the first failed accounts, the files the rest.
FAILED_ACCOUNTS_IN_EMAIL = 50

SENT, OFF, FAILED = "sent", "off", "failed"


@dataclass(frozen=True)
class SummaryDelivery:
    status: str  # SENT, OFF (no recipients configured) or FAILED
    detail: str  # for the log and the materialization metadata; never holds the SMTP password
    recipients: int = 0


class SummaryEmailError(RuntimeError):
    """The summary email could not be sent; the message says why."""


def summary_recipients() -> list[str]:
    addresses = (address.strip() for address in settings.SUMMARY_EMAIL_TO.value().split(","))
    return list(dict.fromkeys(address for address in addresses if address))


def send_summary_email(report: SummaryReport, charts: list[Chart]) -> SummaryDelivery:
    """Sends the summary when recipients are configured; reports a failure instead of raising it."""
    recipients = summary_recipients()
    if not recipients:
        return SummaryDelivery(OFF, f"{settings.SUMMARY_EMAIL_TO.name} is empty")
    relay = None
    try:
        relay = summary_relay_from_env(recipients)
        message = summary_email(report, charts, relay.from_address, recipients)
        refused = _deliver(relay, message)
    except Exception as error:  # a summary that cannot be mailed must not fail the day's files
        reason = str(error) if isinstance(error, SummaryEmailError) else f"{type(error).__name__}: {error}"
        if relay is not None and relay.password:
            reason = reason.replace(relay.password, "[REDACTED]")  # smtplib errors quote the server's reply
        return SummaryDelivery(FAILED, reason, len(recipients))
    delivered = len(recipients) - len(refused)
    detail = f"sent to {delivered} of {len(recipients)} recipients via {relay.host}:{relay.port}"
    return SummaryDelivery(SENT if delivered else FAILED, detail, delivered)


def summary_relay_from_env(recipients: list[str]) -> EmailAlerts:
    """The alert channel's relay settings, read now (inside the run), as plain values."""
    host = settings.SMTP_HOST.value()
    sender = settings.ALERT_EMAIL_FROM.value()
    for setting, value in ((settings.SMTP_HOST, host), (settings.ALERT_EMAIL_FROM, sender)):
        if not value:
            raise SummaryEmailError(f"{settings.SUMMARY_EMAIL_TO.name} is set but {setting.name} is empty")
    try:
        port = int(settings.SMTP_PORT.value())
    except ValueError:
        raise SummaryEmailError(f"{settings.SMTP_PORT.name} must be a port number") from None
    return EmailAlerts(
        host=host,
        port=port,
        user=settings.SMTP_USER.value(),
        password=settings.SMTP_PASSWORD.value(),
        security=settings.SMTP_SECURITY.value(),
        ca_file=settings.SMTP_CA_FILE.value(),
        from_address=sender,
        to_dev=", ".join(recipients),
    )


def summary_email(report: SummaryReport, charts: list[Chart], sender: str, recipients: list[str]) -> EmailMessage:
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
            chart.png, maintype="image", subtype="png", cid=content_ids[chart.name], filename=f"{chart.name}.png"
        )
    return message


def _deliver(relay: EmailAlerts, message: EmailMessage) -> dict:
    """Sends over the alert channel's own connection: TLS (STARTTLS or implicit) with the certificate checked,
    plain text only to a loopback relay. One relay configuration, one way of talking to it."""
    relay._check_security()
    with relay._open_connection() as smtp:
        if relay.user:
            smtp.login(relay.user, relay.password)
        return smtp.send_message(message)
