"""The ``requests.Session`` of the token endpoint and the AMS (ratings go through ``rating_transport``)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from esg_assets.lib.firm_api.bounded_body import DEADLINE_POOL_CLASSES


class _FirmSession(requests.Session):
    """A session that reads the environment once per origin, not on every request.

    ``trust_env`` is off, which does three things. The CA bundle the job was configured with is the one used:
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` would silently replace ``Session.verify`` (requests issue
    #3829). A ``~/.netrc`` entry for an API host can no longer replace our bearer token with Basic auth. And
    the per-request look-ups (netrc files, proxy variables) are gone, a share of the client's CPU per request
    (docs/performance.md). Proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...) are still honoured: they are
    read once for each scheme and host and kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self._environment_proxies: dict[tuple[str, str], dict[str, str]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert) -> dict[str, Any]:
        origin = urlsplit(url)[:2]
        environment = self._environment_proxies.get(origin)
        if environment is None:  # a benign race: two threads may both compute the same value once
            environment = self._environment_proxies[origin] = get_environ_proxies(url)
        return super().merge_environment_settings(
            url, merge_setting(proxies, environment), stream, verify, cert
        )


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections read status line and headers under ``bounded_body.request_deadline``."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = DEADLINE_POOL_CLASSES

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):  # a SOCKS manager keeps its own connection classes
            manager.pool_classes_by_scheme = DEADLINE_POOL_CLASSES
        return manager


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

    adapter = _DeadlineAdapter(
        pool_connections=4,  # hosts kept in the pool: the token endpoint, AMS and the ESG API
        pool_maxsize=pool_size,
        pool_block=True,
        # No urllib3 retries at all: which failures are retried, how often and how long to wait depend
        # on the contract (Retry-After, 401 refresh, per-account attempt budget) and live in the clients.
        # read=False as in requests' own default, so a read timeout still surfaces as requests.ReadTimeout.
        max_retries=Retry(total=0, read=False),
    )
    session = _FirmSession()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle or True
    return session
