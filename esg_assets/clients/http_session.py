"""One ``requests.Session`` shared by the worker threads, its connection pool sized for them."""

from __future__ import annotations

import os
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class _PinnedVerifySession(requests.Session):
    """A session whose own CA bundle wins over ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``.

    Plain requests lets those environment variables override ``Session.verify`` (requests issue #3829), so a
    host-wide setting would silently replace the CA bundle the job was configured with.
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def build_session(pool_size: int, ca_bundle: str | None) -> requests.Session:
    """A session with ``pool_size`` keep-alive connections per host and TLS checked against ``ca_bundle``.

    ``pool_size`` should be at least the number of threads sending at once: a smaller pool makes
    threads wait for a connection (``pool_block``) instead of opening and dropping extra ones.
    ``ca_bundle`` is a PEM file for a private CA; ``None`` or "" uses the default trust store.
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    if ca_bundle and not os.path.isfile(ca_bundle):
        # requests would only fail at the first request, with a less direct message.
        raise ValueError(f"CA bundle {ca_bundle!r} is not a file")

    adapter = HTTPAdapter(
        pool_connections=4,  # hosts kept in the pool: the token endpoint, AMS and the ESG API
        pool_maxsize=pool_size,
        pool_block=True,
        # No urllib3 retries at all: which failures are retried, how often and how long to wait depend
        # on the contract (Retry-After, 401 refresh, per-account attempt budget) and live in the clients.
        # read=False as in requests' own default, so a read timeout still surfaces as requests.ReadTimeout.
        max_retries=Retry(total=0, read=False),
    )
    session = _PinnedVerifySession()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle or True
    return session
