"""A real SMTP relay on loopback (aiosmtpd) that demands TLS and a login, recording what it delivers.

SMTP, not HTTP, so not a case for pytest-httpserver: aiosmtpd speaks the protocol (STARTTLS or implicit TLS,
AUTH LOGIN/PLAIN), and this module only configures it and records the delivered messages.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from esg_assets.sandbox.tls import SandboxCertificates, write_sandbox_certificates
from esg_assets_tests.support.ports import free_port


def make_certificates(directory: Path) -> SandboxCertificates:
    """A CA and a certificate for localhost and 127.0.0.1: the sandbox's own generator, shared."""
    return write_sandbox_certificates(directory)


@dataclass(frozen=True)
class DeliveredMessage:
    mail_from: str
    recipients: list[str]  # the envelope's RCPT TO addresses
    message: EmailMessage
    raw: bytes


@dataclass
class _RecordingHandler:
    delivered: list[DeliveredMessage] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # addresses the relay answers 550 (a mailbox that is gone)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        self.delivered.append(DeliveredMessage(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP relay on 127.0.0.1 that requires TLS and AUTH (LOGIN/PLAIN) as ``user``/``password``.

    ``implicit_tls=False``: plain connection that must STARTTLS before anything else (port 587 style).
    ``implicit_tls=True``: TLS from the first byte (port 465 style).
    """

    def __init__(
        self, certificates: SandboxCertificates, user: str, password: str, implicit_tls: bool = False
    ):
        self._handler = _RecordingHandler()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates.cert_file, certificates.key_file)
        # aiosmtpd's controller connects to its own port once started, so it needs the number up front.
        self.port = free_port()
        credentials = (user.encode(), password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == credentials
            return AuthResult(success=ok, handled=False)

        common = dict(hostname="127.0.0.1", port=self.port, authenticator=authenticator, auth_required=True)
        if implicit_tls:
            # aiosmtpd counts only STARTTLS as "TLS" for AUTH, so auth_require_tls is off here: the whole
            # connection is already TLS.
            tls = dict(ssl_context=context, auth_require_tls=False)
        else:
            tls = dict(tls_context=context, require_starttls=True)
        self._controller = Controller(self._handler, **common, **tls)

    @property
    def delivered(self) -> list[DeliveredMessage]:
        return self._handler.delivered

    def refuse(self, address: str) -> None:
        """From now on, answer RCPT TO ``address`` with 550."""
        self._handler.refused.add(address)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        """Closes the port (a test may stop the relay early to see a channel fail); idempotent."""
        if self._controller.server is not None:
            self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
