"""The ESG API's rating GETs sent straight on urllib3's connection pools: the job's hot path.

``requests`` prepares, merges and wraps every request in Python (URL parsing, setting and header merges,
cookie jars, hooks); profiled, that was the largest share of the job's CPU (docs/performance.md),
and a rating GET needs none of it. TLS, proxies from the environment and timeouts are set up as
``http_session.build_session`` sets them for the other endpoints, and failures are raised as the ``requests``
exceptions the client handles for those.
"""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

import requests
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError

from esg_assets.lib.firm_api.bounded_body import (
    DEADLINE_POOL_CLASSES,
    MIB,
    ReadResponse,
    read_bounded,
    request_deadline,
)

RatingResponse = ReadResponse

# The most a rating body may be: a rating is a few hundred bytes, so anything near this is a server fault.
MAX_RATING_BODY = 1 * MIB


class RatingTransport:
    """Keep-alive pools for the ESG API's host, safe to share between threads.

    ``pool_size`` connections per host, blocking when all are busy (as ``build_session``), TLS verified
    against ``ca_bundle`` (or the bundle ``requests`` uses), no redirects and no retries: which failures are
    retried, and when, is the client's decision. Proxy variables are read once per scheme and host.
    """

    def __init__(self, pool_size: int, ca_bundle: str | None):
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ValueError(f"CA bundle {ca_bundle!r} is not a file")
        self._pool_options = {
            "num_pools": 4,
            "maxsize": pool_size,
            "block": True,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle or DEFAULT_CA_BUNDLE_PATH,
        }
        self._direct = _with_deadlines(urllib3.PoolManager(**self._pool_options))
        self._by_origin: dict[tuple[str, str], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: dict[str, str], timeout: float) -> RatingResponse:
        """The response, its body read whole: ``timeout`` bounds the request from its start to the body's
        last byte. Raises ``ResponseTooLargeError`` for a body over ``MAX_RATING_BODY``."""
        deadline = time.monotonic() + timeout
        try:
            with request_deadline(deadline):
                response = self._manager(url).request(
                    "GET",
                    url,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=timeout, read=timeout),
                    retries=False,
                    redirect=False,
                    preload_content=False,
                )
        except SSLError as error:
            raise requests.exceptions.SSLError(error) from error
        except Urllib3ProxyError as error:
            raise requests.exceptions.ProxyError(error) from error
        except NewConnectionError as error:  # a subclass of ConnectTimeoutError, but a refusal, not a timeout
            raise requests.ConnectionError(error) from error
        except ConnectTimeoutError as error:
            raise requests.ConnectTimeout(error) from error
        except ReadTimeoutError as error:
            raise requests.ReadTimeout(error) from error
        except (ProtocolError, HTTPError, OSError) as error:
            raise requests.ConnectionError(error) from error
        return read_bounded(response, limit=MAX_RATING_BODY, deadline=deadline, timeout=timeout)

    def _manager(self, url: str) -> urllib3.PoolManager:
        origin = urlsplit(url)[:2]
        manager = self._by_origin.get(origin)
        if manager is None:
            with self._lock:
                manager = self._by_origin.get(origin)
                if manager is None:
                    proxy = select_proxy(url, get_environ_proxies(url))
                    manager = (
                        _with_deadlines(urllib3.ProxyManager(proxy, **self._pool_options))
                        if proxy
                        else self._direct
                    )
                    self._by_origin[origin] = manager
        return manager

    def close(self) -> None:
        with self._lock:
            for manager in {id(m): m for m in (self._direct, *self._by_origin.values())}.values():
                manager.clear()


def _with_deadlines(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    manager.pool_classes_by_scheme = DEADLINE_POOL_CLASSES
    return manager
