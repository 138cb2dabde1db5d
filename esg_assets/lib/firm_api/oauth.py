"""OAuth2 client-credentials access tokens (api-contract section 1), cached and shared by all threads."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import requests

from esg_assets.core.transport_security import tls_problem
from esg_assets.lib.firm_api.errors import AuthError
from esg_assets.lib.firm_api.retrying import TRANSIENT_STATUSES, call_with_retries, retry_after_seconds

logger = logging.getLogger(__name__)

# Refresh this long before the server's expiry (capped at a tenth of the lifetime for short-lived tokens),
# so a request signed just before expiry does not reach the server after it.
_REFRESH_MARGIN_SECONDS = 60.0

# OAuth2 error codes are short ASCII words (RFC 6749 section 5.2); anything else is not echoed.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def redacted_url(url: str) -> str:
    """``url`` without user info, query or fragment, for messages: those parts can hold credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def oauth_error_code(response: requests.Response) -> str | None:
    """The ``error`` code of an OAuth2-style JSON error body, if it has a plausible one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


@dataclass(frozen=True)
class _CachedToken:
    value: str = ""
    refresh_at: float | None = None  # clock() time to fetch a new one; None: until a 401 says so

    def fresh(self, now: float) -> bool:
        return self.refresh_at is None or now < self.refresh_at


@dataclass(frozen=True)
class _TokenAttempt:
    """The result of one POST to the token endpoint."""

    token: _CachedToken | None = None
    problem: str | None = None  # why there is no token, e.g. "HTTP 401 invalid_client"
    transient: bool = False
    retry_after: float | None = None
    refused: bool = False  # the endpoint refused our credentials or grant (400/401): asking again won't help


class TokenProvider:
    """Hands out a valid access token to any number of threads, fetching a new one only when needed.

    At most one thread talks to the token endpoint at a time; the others wait for its result instead of
    sending requests of their own. A failure is remembered, so the threads queued behind it get the same
    ``AuthError`` at once instead of each asking again: refused credentials for the provider's lifetime
    (repeated refusals can get a client locked out), other failures for ``backoff_max`` seconds.
    """

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        *,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._session = session
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cached: _CachedToken | None = None
        self._failure: str | None = None  # the message of the last failed fetch
        self._failure_until = float("-inf")  # clock() time until which that failure is repeated

    def __repr__(self) -> str:
        # Names the endpoint and the client for debugging; the secret and the token never appear.
        return f"TokenProvider(token_url={redacted_url(self._token_url)!r}, client_id={self._client_id!r})"

    def token(self) -> str:
        """A token that is not known to be expired; fetches one if there is none. Raises ``AuthError``."""
        cached = self._cached  # lock-free fast path: reading one attribute is atomic
        if cached is not None and cached.fresh(self._clock()):
            return cached.value
        with self._lock:
            cached = self._cached
            if cached is None or not cached.fresh(self._clock()):
                cached = self._fetch()
                self._cached = cached
            return cached.value

    def invalidate(self, stale_token: str) -> None:
        """Report that the server refused ``stale_token`` (a 401).

        Only drops the cache if ``stale_token`` is still the cached token: when many threads get a 401 for
        the same token, the first one triggers a refresh and the others reuse its result.
        """
        with self._lock:
            if self._cached is not None and self._cached.value == stale_token:
                self._cached = None

    def _fetch(self) -> _CachedToken:
        if self._failure is not None and self._clock() < self._failure_until:
            raise AuthError(self._failure)
        outcome, attempts = call_with_retries(
            self._attempt,
            max_attempts=self._max_attempts,
            backoff_base=self._backoff_base,
            backoff_max=self._backoff_max,
            sleep=self._sleep,
        )
        if outcome.token is not None:
            self._failure = None
            return outcome.token
        endpoint = redacted_url(self._token_url)
        message = f"No access token from the token endpoint {endpoint}: {outcome.problem}"
        if outcome.transient:
            message += f" after {attempts} attempt(s)"
        self._failure = message
        self._failure_until = float("inf") if outcome.refused else self._clock() + self._backoff_max
        raise AuthError(message)

    def _attempt(self) -> _TokenAttempt:
        sent_at = self._clock()  # expiry counts from the request, not the answer: errs on the early side
        try:
            response = self._session.post(
                self._token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except requests.Timeout:
            return _TokenAttempt(problem="timeout", transient=True)
        except requests.exceptions.SSLError as exc:  # an untrusted or expired certificate: not worth a retry
            return _TokenAttempt(problem=tls_problem(exc))
        except requests.ConnectionError:
            return _TokenAttempt(problem="connection error", transient=True)
        except requests.RequestException as exc:
            # Only the type: some exception texts quote the request.
            return _TokenAttempt(problem=f"request failed ({type(exc).__name__})")

        status = response.status_code
        if status in TRANSIENT_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            return _TokenAttempt(problem=f"HTTP {status}", transient=True, retry_after=retry_after)
        if status != 200:
            code = oauth_error_code(response)
            problem = f"HTTP {status} {code}" if code else f"HTTP {status}"
            if status == 401:
                problem += " (client id or secret rejected)"
            return _TokenAttempt(problem=problem, refused=status in (400, 401))
        return self._parse(response, sent_at)

    def _parse(self, response: requests.Response, sent_at: float) -> _TokenAttempt:
        try:
            body = json.loads(response.content)
        except ValueError:
            return _TokenAttempt(problem="the token response is not JSON")
        if not isinstance(body, dict):
            return _TokenAttempt(problem="the token response is not a JSON object")

        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            return _TokenAttempt(problem="the token response has no access_token")

        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            return _TokenAttempt(problem="the token response's token_type is not Bearer")

        expires_in = body.get("expires_in")
        if expires_in is None:
            # RFC 6749 makes it optional: use the token until the server answers 401.
            logger.info("Obtained an access token without expires_in")
            return _TokenAttempt(token=_CachedToken(access_token))
        lifetime = _seconds(expires_in)
        if lifetime is None:
            return _TokenAttempt(problem="the token response's expires_in is not a positive number")
        margin = min(_REFRESH_MARGIN_SECONDS, lifetime / 10)
        logger.info("Obtained an access token valid for %.0f s", lifetime)
        return _TokenAttempt(token=_CachedToken(access_token, refresh_at=sent_at + lifetime - margin))


def _seconds(value: object) -> float | None:
    """A positive number of seconds from ``expires_in``; some servers send it as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and 0 < value < float("inf"):
        return float(value)
    return None


_Response = TypeVar("_Response")  # a requests.Response, or a RatingResponse on the ratings hot path


def send_authorized(tokens: TokenProvider, send: Callable[[Callable[[], str]], _Response]) -> _Response:
    """``send(bearer)`` with the current token; after a 401, refresh the token and send exactly once more.

    ``send`` calls ``bearer()`` at the moment it sends, not before: a request that waited for a pacing slot
    must not carry a token that expired while it waited. A 401 from the repeat is returned as it is: the
    caller reports it as an error instead of looping (api-contract section 1). Exceptions propagate.
    """
    sent_with: list[str] = []

    def bearer() -> str:
        sent_with.append(tokens.token())
        return sent_with[-1]

    response = send(bearer)
    if response.status_code == 401 and sent_with:
        tokens.invalidate(sent_with[-1])
        response = send(bearer)
    return response
