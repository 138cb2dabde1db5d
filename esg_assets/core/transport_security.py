"""Encryption in transit: the job sends only over https, but for loopback or an explicit, logged opt-out."""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import urlsplit

from esg_assets.core.settings import ALLOW_INSECURE_HTTP

logger = logging.getLogger(__name__)


class InsecureUrlError(ValueError):
    """A plain http:// URL to another host, without the opt-out; the message names the setting."""


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(setting: str, url: str, allow_insecure: bool) -> str | None:
    """Refuse ``url`` unless it is https, http to a loopback host, or http with the opt-out.

    Returns a warning to log when only the opt-out let it through, else ``None``. A URL without a scheme
    (``host:port``, as some clients take it) counts as http.
    """
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None
    if scheme != "http":
        raise InsecureUrlError(f"Setting {setting} must be an https URL, got {url!r}")
    host = parts.hostname or ""
    if is_loopback_host(host):
        return None
    if not allow_insecure:
        raise InsecureUrlError(
            f"Setting {setting} is plain http to {host}, which sends data and credentials unencrypted; use "
            f"https (with ESG_CA_BUNDLE for a private CA), or set {ALLOW_INSECURE_HTTP.name}=true to allow it"
        )
    warning = (
        f"INSECURE: {setting} sends to {host} over plain http because {ALLOW_INSECURE_HTTP.name}=true; "
        "data and credentials cross the network unencrypted"
    )
    logger.warning(warning, extra={"event": "insecure_http_allowed", "setting": setting})
    return warning


_VERIFY_FAILURE = re.compile(r"certificate verify failed: ([^(]+?)\s*\(")


def tls_problem(error: Exception) -> str:
    """What went wrong in a TLS handshake, e.g. "TLS certificate verify failed: certificate has expired".

    Not worth a retry: a certificate the job does not trust stays untrusted. Only OpenSSL's reason is kept.
    """
    match = _VERIFY_FAILURE.search(str(error))
    reason = f"certificate verify failed: {match.group(1)}" if match else "handshake failed"
    return f"TLS {reason} (check the URL, and ESG_CA_BUNDLE for a private CA)"
