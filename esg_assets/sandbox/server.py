"""The sandbox's aiohttp application, and ``SandboxServer``, which serves it on loopback from a thread."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from datetime import date

from aiohttp import BasicAuth, web

from esg_assets.core.iso_dates import parse_iso_date
from esg_assets.sandbox.config import SandboxConfig
from esg_assets.sandbox.data import (
    HOSTILE_FIRST_PAGE_ROWS,
    OVERSIZED_PADDING,
    TRICKLE_SECONDS_PER_BYTE,
    Fault,
    SandboxData,
    encode_account_page,
)
from esg_assets.sandbox.tls import SandboxCertificates, write_sandbox_certificates

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_JSON = "application/json"
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class TokenBucket:
    """The ESG rate limit: ``rate`` tokens a second, holding at most one second's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = rate
        self.tokens = rate
        self._updated = time.monotonic()

    def take(self) -> float:
        """Spends a token and returns 0, or returns the seconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class _EndpointStats:
    def __init__(self):
        self.by_status: Counter[int] = Counter()

    def snapshot(self) -> dict:
        return {
            "requests": sum(self.by_status.values()),
            "by_status": {str(status): n for status, n in sorted(self.by_status.items())},
        }


def _json_response(status: int, payload: object, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type=_JSON, headers=headers)


def _fault_response(fault: Fault) -> web.Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    if fault.kind == "invalid_json":
        # A body cut short mid-number, as a proxy that dropped the upstream connection would send.
        return web.Response(status=200, body=b'{"account_id":"ACC-', content_type=_JSON, headers=headers)
    if fault.kind == "wrong_shape":
        return _json_response(200, {"message": "analysis engine timed out, please retry"}, headers)
    return _json_response(fault.status, {"error": fault.kind}, headers)


async def _trickled(request: web.Request, body: bytes) -> web.StreamResponse:
    """``body`` one byte at a time, each well within a read timeout, the whole far beyond any total one."""
    response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for index in range(len(body)):
            await asyncio.sleep(TRICKLE_SECONDS_PER_BYTE)
            await response.write(body[index : index + 1])
    except ConnectionError:  # the client gave up waiting: what a bounded client does
        pass
    return response


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match list against the current ETag."""
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _seconds_header(seconds: float) -> str:
    return str(max(0, math.ceil(seconds)))


class SandboxApp:
    """The endpoints and their in-memory state; every method runs on the server's event loop."""

    def __init__(self, config: SandboxConfig, data: SandboxData | None = None):
        self.config = config
        self.data = data or SandboxData(config)
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._cursors: dict[str, tuple[int, float]] = {}  # cursor -> (listing position, monotonic expiry)
        # Only the (account, as_of) pairs and pages picked for a one-off fault are remembered, so this
        # stays small however many accounts are served.
        self._faulted_ratings: set[tuple[str, date]] = set()
        self._faulted_pages: set[int] = set()
        # Hostile mode's once-per-run faults, each dropped once served.
        self._cursor_expiry_pending = config.hostile_rate > 0
        self._hostile_ratings = self.data.hostile_fault_accounts()
        self._bucket = TokenBucket(config.rate_limit) if config.rate_limit is not None else None
        self._latency = config.latency_ms / 1000.0
        self.in_flight = 0
        self.max_in_flight_seen = 0
        self.token_stats = _EndpointStats()
        self.ams_stats = _EndpointStats()
        self.esg_stats = _EndpointStats()
        # Benchmarks tell the 429s of the enforced limits from injected faults, and check the pace per second.
        self.esg_limited = 0  # 429s of the rate or in-flight limit
        self.esg_injected = 0  # responses replaced by a configured failure or one-off fault
        self.esg_per_second: Counter[int] = Counter()  # ESG responses by wall-clock epoch second
        # Seconds ESG requests spent in the handler, summed: over a span of time, the mean number in flight.
        self.esg_busy_seconds = 0.0

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/token", self.issue_token)
        app.router.add_get("/ams/v1/accounts", self.list_accounts)
        app.router.add_get("/esg/v1/accounts/{account_id}/esg-rating", self.esg_rating)
        app.router.add_get("/_sandbox/stats", self.stats_endpoint)
        return app

    # --- stats and tokens -------------------------------------------------------------------------
    def stats(self) -> dict:
        esg = self.esg_stats.snapshot()
        esg["max_in_flight_seen"] = self.max_in_flight_seen
        esg["in_flight"] = self.in_flight
        esg["busy_seconds"] = round(self.esg_busy_seconds, 3)
        esg["limited"] = self.esg_limited
        esg["injected"] = self.esg_injected
        esg["per_second"] = {str(second): n for second, n in sorted(self.esg_per_second.items())}
        esg["hostile_pending"] = len(self._hostile_ratings)  # once-per-run faults not yet served
        return {"token": self.token_stats.snapshot(), "ams": self.ams_stats.snapshot(), "esg": esg}

    async def stats_endpoint(self, request: web.Request) -> web.Response:
        return _json_response(200, self.stats())

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() != "bearer ":
            return False
        token = header[7:].strip()
        expiry = self._tokens.get(token)
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self._tokens[token]
            return False
        return True

    # --- POST /oauth/token --------------------------------------------------------------------------
    async def issue_token(self, request: web.Request) -> web.Response:
        response = await self._token_response(request)
        self.token_stats.by_status[response.status] += 1
        return response

    async def _token_response(self, request: web.Request) -> web.Response:
        form = await request.post()
        # Per RFC 6749 2.3.1 the client may authenticate in the body or with HTTP Basic.
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.headers.get("Authorization", "")[:6].lower() == "basic ":
            try:
                basic = BasicAuth.decode(request.headers["Authorization"])
                client_id, client_secret = basic.login, basic.password
            except ValueError:
                client_id = client_secret = None
        no_store = {"Cache-Control": "no-store"}
        grant_type = form.get("grant_type")
        if not grant_type:
            return _json_response(400, {"error": "invalid_request"}, no_store)
        if grant_type != "client_credentials":
            return _json_response(400, {"error": "unsupported_grant_type"}, no_store)
        if not (
            isinstance(client_id, str)
            and isinstance(client_secret, str)
            and hmac.compare_digest(client_id.encode(), self.config.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        ):
            return _json_response(401, {"error": "invalid_client"}, no_store)
        now = time.monotonic()
        self._forget_expired_tokens(now)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = now + self.config.token_ttl
        # Rounded up: a sub-second test TTL still reads as a token worth using once.
        expires_in = math.ceil(self.config.token_ttl)
        return _json_response(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, no_store
        )

    def _forget_expired_tokens(self, now: float) -> None:
        # Tokens share one TTL, so the dict is in expiry order.
        while self._tokens:
            token, expiry = next(iter(self._tokens.items()))
            if expiry > now:
                break
            del self._tokens[token]

    # --- GET /ams/v1/accounts -----------------------------------------------------------------------
    async def list_accounts(self, request: web.Request) -> web.Response:
        response = await self._accounts_response(request)
        self.ams_stats.by_status[response.status] += 1
        return response

    async def _accounts_response(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json_response(401, {"error": "invalid_token"}, _INVALID_TOKEN)
        if self._latency:
            await asyncio.sleep(self._latency)
        query = request.query
        if query.get("status", "active") != "active":
            return _json_response(400, {"error": "invalid_request", "detail": "status must be active"})
        raw_limit = query.get("limit", "100")
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= 1000:
            return _json_response(400, {"error": "invalid_request", "detail": "limit must be 1..1000"})
        now = time.monotonic()
        cursor = query.get("cursor")
        if cursor is None:
            position = self.data.FIRST_PAGE
        elif self._cursor_expiry_pending:
            self._cursor_expiry_pending = False
            return _json_response(400, {"error": "invalid_cursor"})
        else:
            entry = self._cursors.get(cursor)
            if entry is None or entry[1] <= now:
                return _json_response(400, {"error": "invalid_cursor"})
            position = entry[0]
        if position not in self._faulted_pages:
            fault = self.data.page_fault(position)
            if fault is not None:
                self._faulted_pages.add(position)
                return _fault_response(fault)
        limit = int(raw_limit)
        aborted_walk = self._cursor_expiry_pending and position == self.data.FIRST_PAGE
        if aborted_walk:  # a short first page, so the walk has a second page whose cursor can expire
            limit = min(limit, HOSTILE_FIRST_PAGE_ROWS)
        page = self.data.account_page(position, limit)
        rows = page.rows
        next_cursor = None
        if page.next_position is not None:
            next_cursor = self._issue_cursor(page.next_position, now)
            if aborted_walk:
                rows = [*rows, self.data.ghost_row()]
        return web.Response(body=encode_account_page(rows, next_cursor), content_type=_JSON)

    def _issue_cursor(self, position: int, now: float) -> str:
        # Cursors share one TTL, so the dict is in expiry order.
        while self._cursors:
            cursor, (_, expiry) = next(iter(self._cursors.items()))
            if expiry > now:
                break
            del self._cursors[cursor]
        cursor = secrets.token_urlsafe(18)
        self._cursors[cursor] = (position, now + self.config.cursor_ttl)
        return cursor

    # --- GET /esg/v1/accounts/{id}/esg-rating -------------------------------------------------------
    async def esg_rating(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight_seen:
            self.max_in_flight_seen = self.in_flight
        started = time.monotonic()
        try:
            response = await self._rating_response(request)
        finally:
            # Released before aiohttp writes the response, so a client that waits for each response
            # before its next request can never be counted twice.
            self.in_flight -= 1
            self.esg_busy_seconds += time.monotonic() - started
        self.esg_stats.by_status[response.status] += 1
        self.esg_per_second[int(time.time())] += 1
        return response

    async def _rating_response(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json_response(401, {"error": "invalid_token"}, _INVALID_TOKEN)
        limit = self.config.max_in_flight
        if limit is not None and self.in_flight > limit:
            self.esg_limited += 1
            return _json_response(429, {"error": "too_many_requests_in_flight"}, {"Retry-After": "1"})
        if self._bucket is not None:
            wait = self._bucket.take()
            if wait:
                self.esg_limited += 1
                return self._rate_limited(wait)
        if self._latency:
            await asyncio.sleep(self._latency)
        raw_as_of = request.query.get("as_of", "")
        try:
            as_of = parse_iso_date(raw_as_of)
        except ValueError:
            return self._with_quota_headers(
                _json_response(400, {"error": "invalid_request", "detail": "as_of must be YYYY-MM-DD"})
            )
        account_id = request.match_info["account_id"]
        hostile = self._hostile_ratings.pop(account_id, None)
        if hostile is not None:
            self.esg_injected += 1
            if hostile == "oversized":
                body = self.data.decoy_rating(account_id, as_of, padding=OVERSIZED_PADDING)
                return web.Response(body=body, content_type=_JSON)
            return await _trickled(request, self.data.decoy_rating(account_id, as_of))
        fault = self.data.permanent_failure(account_id)
        if fault is None and (account_id, as_of) not in self._faulted_ratings:
            fault = self.data.transient_fault(account_id, as_of)
            if fault is not None:
                self._faulted_ratings.add((account_id, as_of))
        if fault is not None:
            self.esg_injected += 1
            return self._with_quota_headers(_fault_response(fault))
        rating = self.data.encoded_rating(account_id, as_of)
        if rating is None:
            return self._with_quota_headers(_json_response(404, {"error": "not_found"}))
        headers = {"ETag": rating.etag, **self._quota_headers()}
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, rating.etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = _JSON
        return web.Response(body=rating.body, headers=headers)

    def _quota_headers(self) -> dict[str, str]:
        """The RateLimit-* headers of the current bucket, or none when no rate limit is enforced."""
        bucket = self._bucket
        if bucket is None:
            return {}
        return {
            "RateLimit-Limit": f"{bucket.rate:g}",
            "RateLimit-Remaining": str(int(bucket.tokens)),
            "RateLimit-Reset": _seconds_header((bucket.capacity - bucket.tokens) / bucket.rate),
        }

    def _with_quota_headers(self, response: web.Response) -> web.Response:
        if self._bucket is not None:
            response.headers.update(self._quota_headers())
        return response

    def _rate_limited(self, wait: float) -> web.Response:
        # "0" only when the next token is a few milliseconds away; otherwise whole seconds, rounded up.
        retry_after = "0" if wait <= 0.005 else _seconds_header(wait)
        headers = {
            "Retry-After": retry_after,
            "RateLimit-Limit": f"{self._bucket.rate:g}",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": _seconds_header(wait),
        }
        return _json_response(429, {"error": "rate_limited"}, headers)


class SandboxServer:
    """The sandbox on 127.0.0.1, served by an event loop in a background thread (a context manager)."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.data = SandboxData(config)
        self.port: int | None = None
        self._app = SandboxApp(config, self.data)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.certificates: SandboxCertificates | None = None
        self._temporary_tls_dir: str | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, self.config.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        ssl_context = self._tls_context() if self.config.tls else None
        self._loop = _new_event_loop()
        self._runner = web.AppRunner(self._app.application(), access_log=None, handle_signals=False)
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._runner.setup())
                site = web.SockSite(self._runner, sock, backlog=1024, ssl_context=ssl_context)
                self._loop.run_until_complete(site.start())
            except BaseException as error:  # handed to start() in the caller's thread
                failure.append(error)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name=f"esg-sandbox-{self.port}", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        logger.info(
            "ESG sandbox on %s: %d accounts, seed %d", self.base_url, self.config.accounts, self.config.seed
        )
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None
        if self._temporary_tls_dir is not None:
            shutil.rmtree(self._temporary_tls_dir, ignore_errors=True)
            self._temporary_tls_dir = None

    def _tls_context(self) -> ssl.SSLContext:
        directory = self.config.tls_dir
        if directory is None:
            directory = self._temporary_tls_dir = tempfile.mkdtemp(prefix="esg-sandbox-tls-")
        self.certificates = write_sandbox_certificates(directory, expired=self.config.tls_expired)
        return self.certificates.server_context()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- what a job needs to reach it ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the sandbox has not been started")
        return f"{'https' if self.config.tls else 'http'}://{HOST}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def ams_base_url(self) -> str:
        return self.base_url + "/ams"

    @property
    def esg_base_url(self) -> str:
        return self.base_url + "/esg"

    def job_environment(self) -> dict[str, str]:
        """The job's settings (esg_assets.core.settings) that point it at this sandbox."""
        environment = {
            "ESG_AUTH_TOKEN_URL": self.token_url,
            "ESG_CLIENT_ID": self.config.client_id,
            "ESG_CLIENT_SECRET": self.config.client_secret,
            "ESG_AMS_BASE_URL": self.ams_base_url,
            "ESG_API_BASE_URL": self.esg_base_url,
        }
        if self.config.rate_limit is not None:
            environment["ESG_RATE_LIMIT_PER_SECOND"] = f"{self.config.rate_limit:g}"
        if self.config.max_in_flight is not None:
            environment["ESG_MAX_IN_FLIGHT"] = str(self.config.max_in_flight)
        if self.certificates is not None:
            environment["ESG_CA_BUNDLE"] = str(self.certificates.ca_file)
        return environment

    # --- test hooks ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        """The same counts as GET /_sandbox/stats."""
        return self._on_loop(self._app.stats)

    def revoke_tokens(self) -> None:
        """Makes every token issued so far invalid, as if they had all expired."""
        self._on_loop(self._app.revoke_tokens)

    def _on_loop(self, function):
        # The state belongs to the loop thread; reading it from another thread mid-update could tear.
        if self._thread is None:
            return function()

        async def call():
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop if installed (more requests a second: docs/performance.md), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
