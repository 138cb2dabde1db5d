"""Certificates for ``esg-sandbox --tls``: a CA made on the spot, and the server certificate it signs.

Clients trust the CA through ESG_CA_BUNDLE, exactly as they would trust the firm's private CA. An expired
server certificate can be made too, to show that clients refuse it.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from esg_assets.core.atomic_files import atomic_file

CA_FILE = "sandbox-ca.pem"
CERT_FILE = "sandbox-server.pem"
KEY_FILE = "sandbox-server.key"


@dataclass(frozen=True)
class SandboxCertificates:
    """Where the PEM files are: the CA clients trust, and the server's certificate and private key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def write_sandbox_certificates(
    directory: str | Path, *, expired: bool = False, now: datetime | None = None
) -> SandboxCertificates:
    """A new CA and a server certificate for localhost, 127.0.0.1 and ::1, as PEM files in ``directory``.

    The server certificate is valid for a week from ``now``, or, with ``expired``, ended a day before it.
    """
    now = now or datetime.now(UTC)
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ESG sandbox CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now - timedelta(days=30), now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    not_before, not_after = (now - timedelta(days=10), now - timedelta(days=1)) if expired else (
        now - timedelta(hours=1), now + timedelta(days=7)
    )  # fmt: skip
    server_cert = (
        _builder(server_name, ca_name, server_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certificates = SandboxCertificates(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
    _write(certificates.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(certificates.cert_file, server_cert.public_bytes(serialization.Encoding.PEM))
    _write(
        certificates.key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return certificates


def _builder(
    subject, issuer, public_key, not_before: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, content: bytes) -> None:
    with atomic_file(path) as file:  # 0600: the private key above all
        file.write(content)
