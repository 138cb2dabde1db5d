"""The email of an alert: what happened, which day, the numbers, the run link and the first runbook step."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from esg_assets.core.support_page import SHIPPED_SUPPORT_PAGE, support_line
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import ALERT_KINDS
from esg_assets.defs.alerting.job_day import CENTRAL

# When the business hears again: the on-call team answers within the hour (docs/runbook.md, "Escalation").
NEXT_UPDATE_WITHIN = timedelta(hours=1)


def alert_email(
    alert: Alert,
    run_url: str | None,
    sender: str,
    recipients: Sequence[str],
    support_url: str = SHIPPED_SUPPORT_PAGE,
) -> EmailMessage:
    """A plain-text message with a simple HTML alternative, addressed to ``recipients``."""
    message = EmailMessage()
    tag = "RESOLVED" if alert.action == "resolve" else alert.severity.upper()
    message["Subject"] = f"[{tag}] {alert.headline}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(alert.detected_at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # RFC 3834: out-of-office and other auto-responders do not answer an automated message.
    message["Auto-Submitted"] = "auto-generated"
    message["X-ESG-Dedup-Key"] = alert.dedup_key
    rows = _fact_rows(alert, run_url) + [("Support", support_url)]
    message.set_content(_text_body(alert, rows))
    message.add_alternative(_html_body(alert, rows), subtype="html")
    return message


def _fact_rows(alert: Alert, run_url: str | None) -> list[tuple[str, str]]:
    what = f"resolves {alert.resolves}" if alert.action == "resolve" else f"{alert.kind} ({alert.severity})"
    rows = [
        ("Day", alert.partition),
        ("Alert", what),
        ("Run", run_url or "no run to link (the run did not start or is unknown)"),
    ]
    if alert.runbook_step:
        rows.append(("First runbook step", alert.runbook_step))
    return rows


def _text_body(alert: Alert, rows: list[tuple[str, str]]) -> str:
    lines = [alert.summary, ""]
    lines += [f"{label}: {value}" for label, value in rows]
    if alert.details:
        lines += ["", "Numbers:"]
        lines += [f"  {name}: {_number(value)}" for name, value in alert.details.items()]
    lines += ["", f"Detected {alert.detected_at.isoformat(timespec='seconds')}, dedup key {alert.dedup_key}."]
    return "\n".join(lines) + "\n"


def _html_body(alert: Alert, rows: list[tuple[str, str]]) -> str:
    def row(label: str, value: str) -> str:
        return f"<tr><th align='left'>{html.escape(label)}</th><td>{_linked(value, value)}</td></tr>"

    facts = "".join(row(label, value) for label, value in rows)
    numbers = "".join(row(name, _number(value)) for name, value in alert.details.items())
    return (
        f"<html><body><p>{html.escape(alert.summary)}</p><table>{facts}</table>"
        + (f"<h4>Numbers</h4><table>{numbers}</table>" if numbers else "")
        + f"<p><small>dedup key {html.escape(alert.dedup_key)}</small></p></body></html>\n"
    )


def _linked(text: str, url: str) -> str:
    """``text`` escaped, with ``url`` in it made a link when it is an http(s) URL."""
    escaped = html.escape(text)
    if not url.startswith(("https://", "http://")):
        return escaped
    link = f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
    return escaped.replace(html.escape(url), link, 1)


def _number(value: int | float | str) -> str:
    # Rates such as 0.0625 read better rounded; counts and text are shown as they are.
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def business_email(
    alert: Alert, sender: str, recipients: Sequence[str], support_url: str = SHIPPED_SUPPORT_PAGE
) -> EmailMessage:
    """The alert for the business: what is late or missing in plain words, and when the next update comes.

    No run ids, error texts, numbers or runbook steps: those are in the development team's email.
    """
    day = alert.partition
    if alert.action == "resolve":
        subject = f"Resolved: ESG ratings for {day}"
        news = f"The problem reported earlier for the ESG ratings of {day} is resolved."
        follow_up = "No action is needed on your side."
    else:
        news = f"ESG ratings for {day}: {ALERT_KINDS[alert.kind].business_news}."
        subject = news.rstrip(".")
        update = (alert.detected_at + NEXT_UPDATE_WITHIN).astimezone(CENTRAL)
        follow_up = (
            "The development team has been alerted and is working on it. "
            f"The next update comes by {update:%H:%M} Central, or sooner when the file is ready."
        )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(alert.detected_at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["X-ESG-Dedup-Key"] = alert.dedup_key
    message["X-ESG-Audience"] = "business"
    support = support_line(support_url)
    message.set_content(f"{news}\n\n{follow_up}\n\n{support}\n")
    message.add_alternative(
        f"<html><body><p>{html.escape(news)}</p><p>{html.escape(follow_up)}</p>"
        f"<p>{_linked(support, support_url)}</p></body></html>\n",
        subtype="html",
    )
    return message
