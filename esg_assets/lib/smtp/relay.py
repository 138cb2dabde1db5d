"""The firm's SMTP relay as a resource: STARTTLS or implicit TLS, certificate checked, logged in."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from dagster import ConfigurableResource
from pydantic import Field

from esg_assets.core import settings
from esg_assets.core.setting_values import one_of, setting_check, whole_number
from esg_assets.core.transport_security import is_loopback_host

SECURITY_MODES = ("starttls", "ssl", "none")


class SmtpDeliveryError(RuntimeError):
    """The relay did not take the message; the reason never holds the password."""


class SmtpRelayResource(ConfigurableResource):
    """The relay the job's emails (alerts, the daily summary) go through, and the sender they come from.

    An empty ``host`` switches email off. The password is a secret (``EnvVar``).
    """

    host: str = ""
    port: int = 587
    user: str = Field(default="", description="Login on the relay; empty: send without logging in.")
    password: str = Field(default="", repr=False, description="Password of `user` (secret).")
    security: str = Field(default="starttls", description="starttls | ssl | none (loopback relays only).")
    ca_file: str = Field(default="", description="PEM CA bundle of a private CA; empty: the system store.")
    sender: str = Field(default="", description="From address of the job's emails (ESG_ALERT_EMAIL_FROM).")
    timeout_seconds: float = Field(default=10.0, gt=0)

    _port = setting_check("port", settings.SMTP_PORT, whole_number, high=65535)
    _security = setting_check("security", settings.SMTP_SECURITY, one_of, choices=SECURITY_MODES)

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def send(self, message: EmailMessage) -> dict:
        """Sends ``message`` (addressed from ``sender``); returns the recipients the relay refused."""
        self._check_ready()
        try:
            with self._open_connection() as smtp:
                if self.user:
                    smtp.login(self.user, self.password)
                return smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpDeliveryError(
                f"{self._relay} rejected the login ({exc.smtp_code}): wrong user or password"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise SmtpDeliveryError(
                f"TLS certificate of {self._relay} not trusted ({exc.verify_message}); "
                f"a private CA goes in {settings.SMTP_CA_FILE.name}"
            ) from None
        except smtplib.SMTPNotSupportedError:
            # No silent downgrade to plain text when the relay does not offer STARTTLS.
            raise SmtpDeliveryError(f"{self._relay} does not offer STARTTLS") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SmtpDeliveryError(self.masked(f"{self._relay}: {type(exc).__name__}: {exc}")) from None

    def masked(self, text: str) -> str:
        # smtplib errors quote the server's reply; a relay that echoed the password must not leak it.
        return text.replace(self.password, "[REDACTED]") if self.password else text

    @property
    def _relay(self) -> str:
        return f"SMTP relay {self.host}:{self.port}"

    def _check_ready(self) -> None:
        if not self.host:
            raise SmtpDeliveryError(f"{settings.SMTP_HOST.name} is empty: email is off")
        if not self.sender:
            raise SmtpDeliveryError(
                f"{settings.SMTP_HOST.name} is set but {settings.ALERT_EMAIL_FROM.name} is empty"
            )
        if self.security == "none" and not is_loopback_host(self.host):
            raise SmtpDeliveryError(
                f"{settings.SMTP_SECURITY.name} 'none' (no TLS) is only allowed for a loopback relay, "
                f"not {self.host!r}"
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
