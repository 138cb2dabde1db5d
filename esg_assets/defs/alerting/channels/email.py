"""Alerts by email over SMTP with STARTTLS or implicit TLS, certificate checked, logged in."""

from __future__ import annotations

import logging
import smtplib
import ssl

from dagster import ConfigurableResource
from pydantic import Field

from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.delivery import AlertChannelError, DeliveryResult
from esg_assets.defs.alerting.channels.email_message import alert_email
from esg_assets.lib.firm_api.transport_security import is_loopback_host

logger = logging.getLogger(__name__)

CHANNEL = "email"
SECURITY_MODES = ("starttls", "ssl", "none")


class EmailAlerts(ConfigurableResource):
    """The SMTP relay, the job's login on it, and who gets which alerts; the password is a secret."""

    host: str
    port: int = 587
    user: str = Field(default="", description="Login on the relay; empty: send without logging in.")
    password: str = Field(default="", repr=False, description="Password of `user` (secret).")
    security: str = Field(default="starttls", description="starttls | ssl | none (loopback relays only).")
    from_address: str
    to_dev: str = Field(description="Comma-separated addresses that get every alert.")
    to_business: str = Field(default="", description="Comma-separated; get alerts for business_and_dev only.")
    timeout_seconds: float = Field(default=10.0, gt=0)
    ca_file: str = Field(default="", description="PEM CA bundle of a private CA; empty: the system store.")

    def recipients_for(self, alert: Alert) -> list[str]:
        """The dev list always; the business list too when the alert is meant for the business."""
        lists = [self.to_dev] + ([self.to_business] if alert.audience == "business_and_dev" else [])
        addresses = [address.strip() for line in lists for address in line.split(",")]
        return list(dict.fromkeys(address for address in addresses if address))

    def send(self, alert: Alert, run_url: str | None = None) -> DeliveryResult:
        """Sends the alert email; raises ``AlertChannelError`` with a reason that never holds the password."""
        self._check_security()
        recipients = self.recipients_for(alert)
        if not recipients:
            raise AlertChannelError(CHANNEL, f"no recipients configured for audience {alert.audience}")
        message = alert_email(alert, run_url, self.from_address, recipients)
        try:
            with self._open_connection() as smtp:
                if self.user:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            reason = f"{self._relay} rejected the login ({exc.smtp_code}): wrong user or password"
            raise AlertChannelError(CHANNEL, reason) from None
        except ssl.SSLCertVerificationError as exc:
            raise AlertChannelError(
                CHANNEL,
                f"TLS certificate of {self._relay} not trusted ({exc.verify_message}); "
                "a private CA goes in ESG_SMTP_CA_FILE",
            ) from None
        except smtplib.SMTPNotSupportedError:
            # No silent downgrade to plain text when the relay does not offer STARTTLS.
            raise AlertChannelError(CHANNEL, f"{self._relay} does not offer STARTTLS") from None
        except (smtplib.SMTPException, OSError) as exc:
            reason = self._masked(f"{self._relay}: {type(exc).__name__}: {exc}")
            raise AlertChannelError(CHANNEL, reason) from None
        if refused:
            logger.warning(
                "alert email refused for %d of %d recipients",
                len(refused),
                len(recipients),
                extra={"event": "email_recipients_refused", "dedup_key": alert.dedup_key},
            )
        return DeliveryResult(CHANNEL, True, f"sent to {len(recipients) - len(refused)} recipients")

    @property
    def _relay(self) -> str:
        return f"SMTP relay {self.host}:{self.port}"

    def _check_security(self) -> None:
        if self.security not in SECURITY_MODES:
            raise AlertChannelError(CHANNEL, f"security {self.security!r} must be one of {SECURITY_MODES}")
        if self.security == "none" and not is_loopback_host(self.host):
            raise AlertChannelError(
                CHANNEL, f"security 'none' (no TLS) is only allowed for a loopback relay, not {self.host!r}"
            )

    def _open_connection(self) -> smtplib.SMTP:
        if self.security == "none":
            return smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        # Certificate and host name checked; ca_file replaces the system store for a private CA.
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_seconds, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _masked(self, text: str) -> str:
        # smtplib errors quote the server's reply; a relay that echoed the password must not leak it.
        return text.replace(self.password, "[REDACTED]") if self.password else text
