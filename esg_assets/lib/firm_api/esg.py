"""Fetches one account's rating from the ESG Portfolio Analysis API (api-contract section 3)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from urllib.parse import quote

import requests

from esg_assets.core.transport_security import tls_problem
from esg_assets.lib.firm_api.errors import ResponseTooLargeError
from esg_assets.lib.firm_api.oauth import TokenProvider, send_authorized
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets.lib.firm_api.rating_transport import RatingResponse, RatingTransport
from esg_assets.lib.firm_api.retrying import (
    TRANSIENT_STATUSES,
    asks_too_long,
    call_with_retries,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

USER_AGENT = "esg-ratings-job"

# Statuses not worth retrying, with what the contract says they mean.
_FINAL_STATUS_MEANING = {400: "bad request", 403: "not entitled", 404: "unknown account"}

# Path segments a URL normaliser (requests/urllib3 included) resolves as "here" / "parent", even
# percent-encoded: such an id would silently ask for another resource.
_DOT_SEGMENTS = frozenset({"", ".", ".."})


@dataclass(frozen=True)
class RatingFetch:
    """What became of one account's rating request; ``error`` is None when a rating was obtained."""

    account_id: str
    body: dict | None = None  # the parsed 200 body, numbers as Decimal
    etag: str | None = None  # the ETag of a 200, or the one sent when the answer was 304
    not_modified: bool = False  # 304: the rating held for ``etag`` is still current
    http_status: int | None = None  # of the last response; None after a connection error or timeout
    attempts: int = 0
    error: str | None = None  # why no rating was obtained, e.g. "HTTP 404 unknown account"
    retries: int = 0
    throttled: int = 0  # 429s received for this account

    @property
    def obtained(self) -> bool:
        return self.error is None


@dataclass
class ClientStats:
    """Counters over every request the client sent, safe to update from many threads."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    throttled: int = 0
    not_modified: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                setattr(self, name, getattr(self, name) + amount)

    def add_status(self, status: int) -> None:
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "by_status": dict(sorted(self.by_status.items())),
                "retries": self.retries,
                "throttled": self.throttled,
                "not_modified": self.not_modified,
                "connection_errors": self.connection_errors,
                "timeouts": self.timeouts,
            }


@dataclass(frozen=True)
class _RatingAttempt:
    """The result of one attempt (a request, plus its repeat after a 401)."""

    status: int | None = None
    body: dict | None = None
    etag: str | None = None
    not_modified: bool = False
    problem: str | None = None
    transient: bool = False
    retry_after: float | None = None


class EsgClient:
    """Fetches ratings through a shared ``RequestGate``; safe to call from many threads at once."""

    def __init__(
        self,
        transport: RatingTransport,
        base_url: str,
        tokens: TokenProvider,
        gate: RequestGate,
        timeout: float,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must not be negative")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("ESG API base URL must start with http:// or https://")
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._gate = gate
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self.stats = ClientStats()

    def fetch_rating(self, account_id: str, as_of: date, etag: str | None = None) -> RatingFetch:
        """The rating of ``account_id`` as of ``as_of``; ``etag`` (as received) asks for a 304 if unchanged.

        Never raises for a problem of this account: the result says what went wrong. Raises ``AuthError``
        when no token can be had, which is a problem of the whole run.
        """
        if account_id in _DOT_SEGMENTS:
            return RatingFetch(account_id, error="account id cannot be sent in a URL path")
        url = (
            f"{self._base_url}/v1/accounts/{quote(account_id, safe='')}/esg-rating?as_of={as_of.isoformat()}"
        )
        throttled = 0

        def attempt() -> _RatingAttempt:
            nonlocal throttled
            outcome = self._attempt(url, account_id, etag)
            if outcome.status == 429:
                throttled += 1
            return outcome

        def on_retry(outcome: _RatingAttempt, delay: float) -> None:
            self.stats.add(retries=1)
            logger.debug("ESG %s: %s; retrying in %.2f s", account_id, outcome.problem, delay)

        outcome, attempts = call_with_retries(
            attempt,
            max_attempts=self._max_attempts,
            backoff_base=self._backoff_base,
            backoff_max=self._backoff_max,
            sleep=self._sleep,
            on_retry=on_retry,
        )
        return RatingFetch(
            account_id=account_id,
            body=outcome.body,
            etag=etag if outcome.not_modified else outcome.etag,
            not_modified=outcome.not_modified,
            http_status=outcome.status,
            attempts=attempts,
            error=self._error(outcome, attempts),
            retries=attempts - 1,
            throttled=throttled,
        )

    def _error(self, outcome: _RatingAttempt, attempts: int) -> str | None:
        if outcome.problem is None:
            return None
        if not outcome.transient:
            return outcome.problem
        if asks_too_long(outcome, self._backoff_max):
            return (
                f"{outcome.problem} with Retry-After {outcome.retry_after:.0f} s, longer than the "
                f"{self._backoff_max:.0f} s we wait, after {_count(attempts, 'attempt')}"
            )
        return f"{outcome.problem} after {_count(attempts, 'attempt')}"

    def _attempt(self, url: str, account_id: str, etag: str | None) -> _RatingAttempt:
        def send(bearer: Callable[[], str]) -> RatingResponse:
            headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
            if etag is not None:
                headers["If-None-Match"] = etag
            self.stats.add(requests=1)
            with self._gate.slot():  # the slot covers reading the body: the request is in flight until then
                headers["Authorization"] = f"Bearer {bearer()}"
                response = self._transport.get(url, headers, self._timeout)
            self.stats.add_status(response.status_code)
            return response

        try:
            response = send_authorized(self._tokens, send)
        except ResponseTooLargeError as error:  # a server fault, as a body that is not a rating (contract)
            return _RatingAttempt(problem=str(error), transient=True)
        except requests.Timeout:
            self.stats.add(timeouts=1)
            return _RatingAttempt(problem="timeout", transient=True)
        except requests.exceptions.SSLError as exc:  # an untrusted or expired certificate: not worth a retry
            return _RatingAttempt(problem=tls_problem(exc))
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            self.stats.add(connection_errors=1)
            return _RatingAttempt(problem="connection error", transient=True)
        except requests.RequestException as exc:
            return _RatingAttempt(problem=f"request failed ({type(exc).__name__})")
        return self._interpret(response, account_id, etag)

    def _interpret(self, response: RatingResponse, account_id: str, etag: str | None) -> _RatingAttempt:
        status = response.status_code
        if status == 200:
            return _parse_rating(response, account_id)
        if status == 304:
            if etag is None:
                # We asked for nothing conditional, so there is no rating to reuse: a server fault.
                return _RatingAttempt(status=304, problem="HTTP 304 without If-None-Match", transient=True)
            self.stats.add(not_modified=1)
            return _RatingAttempt(status=304, not_modified=True)
        if status == 401:
            return _RatingAttempt(status=401, problem="HTTP 401 after token refresh")
        if status in TRANSIENT_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if status == 429:
                self.stats.add(throttled=1)
            if status == 429:
                # The rate limit is per client, not per account: every worker pauses, so one 429 does not
                # become a 429 for each request already queued. The pause is capped like any retry delay.
                # A 5xx's Retry-After concerns the request that got it; only its own retry waits for it.
                pause = retry_after if retry_after is not None else self._backoff_base
                self._gate.hold_off(min(pause, self._backoff_max))
            return _RatingAttempt(
                status=status, problem=f"HTTP {status}", transient=True, retry_after=retry_after
            )
        meaning = _FINAL_STATUS_MEANING.get(status)
        problem = f"HTTP {status} {meaning}" if meaning else f"HTTP {status}"
        return _RatingAttempt(status=status, problem=problem)


def _parse_rating(response: RatingResponse, account_id: str) -> _RatingAttempt:
    """A 200 body, numbers as exact decimals; a body we cannot use is a transient server fault (contract)."""
    etag = response.headers.get("ETag")
    try:
        body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        return _RatingAttempt(status=200, problem="invalid JSON", transient=True)
    problem = rating_shape_problem(body, account_id)
    if problem is not None:
        return _RatingAttempt(status=200, problem=f"unexpected body ({problem})", transient=True)
    return _RatingAttempt(status=200, body=body, etag=etag)


def rating_shape_problem(body: object, account_id: str) -> str | None:
    """What makes ``body`` not a rating of ``account_id`` in the contract's shape, or ``None``.

    Only the skeleton is checked here: the right account and the containers. Whether each value is
    usable (type, range, date) is api-contract section 4's job, where a bad value makes a Partial row
    instead of a retry.
    """
    if not isinstance(body, dict):
        return "not a JSON object"
    if body.get("account_id") != account_id:
        return "account_id is not the one asked for"
    if not isinstance(body.get("scores"), dict):
        return "scores is missing or not an object"
    # A missing primary_focus or analysis_date is a missing value (a Partial row), not a malformed body.
    if not isinstance(body.get("primary_focus"), dict | None):
        return "primary_focus is neither an object nor null"
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
