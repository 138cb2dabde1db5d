"""EsgClient against a scripted ESG API on loopback (pytest-httpserver): retries, final errors, 401 refresh,
304, stats."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
import requests
from pytest_httpserver.hooks import Delay
from werkzeug import Response

from esg_assets.lib.firm_api.esg import EsgClient
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets.lib.firm_api.rating_transport import RatingTransport
from esg_assets.lib.firm_api.retrying import MIN_RETRY_DELAY
from esg_assets_tests.support.loopback_http import (
    HeaderTricklingServer,
    json_response,
    raw_target,
    token_endpoint,
    trickled_response,
)
from esg_assets_tests.support.scripted_server import Reply, ScriptedServer, json_reply

AS_OF = date(2026, 11, 21)
API = re.compile(r"^/v1/")  # the ESG API's paths; the token endpoint is at /token


def rating_body(account_id: str = "ACC-0000001", **overrides) -> dict:
    body = {
        "account_id": account_id,
        "analysis_date": "2026-11-21",
        "result_status": "Complete",
        "scores": {"overall": 71.25, "environmental": 68.4, "social": 74.1, "governance": 71.9},
        "primary_focus": {"pillar": "Social", "score": 74.1},
        "coverage": {"covered_weight_pct": 91.3, "holdings_total": 48, "holdings_rated": 44},
    }
    body.update(overrides)
    return body


def ok(account_id: str = "ACC-0000001", etag: str = '"v1"') -> Response:
    return json_response(rating_body(account_id), ETag=etag)


def script(server, *responses: Response) -> None:
    """Each of ``responses`` answers one request to the ESG API, in order."""
    for response in responses:
        server.expect_oneshot_request(API).respond_with_response(response)


class RecordingGate:
    """Stands in for RequestGate where pacing is not the subject: no waiting, hold-offs recorded."""

    def __init__(self) -> None:
        self.slots = 0
        self.hold_offs: list[float] = []

    @contextmanager
    def slot(self):
        self.slots += 1
        yield

    def hold_off(self, seconds: float) -> None:
        self.hold_offs.append(seconds)


class Harness:
    """One server (token endpoint at /token, ESG API elsewhere), a client, and what the client slept."""

    def __init__(self, server, **client_options):
        self.server = server
        self.delays: list[float] = []
        self.gate = client_options.pop("gate", RecordingGate())
        self.session = build_session(pool_size=32, ca_bundle=None)
        self.tokens = TokenProvider(self.session, server.url + "/token", "job", "secret", timeout=2.0)
        options = {"timeout": 2.0, "backoff_base": 0.01, "sleep": self.delays.append, **client_options}
        self.client = EsgClient(RatingTransport(pool_size=32, ca_bundle=None), server.url + "/", self.tokens,
                                self.gate, **options)  # fmt: skip

    def fetch(self, account_id: str = "ACC-0000001", etag: str | None = None):
        return self.client.fetch_rating(account_id, AS_OF, etag)

    def api_requests(self):
        return self.server.requests_to("/v1/")


@pytest.fixture
def server(httpserver):
    """The ESG API on pytest-httpserver, its token endpoint at /token."""
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())
    return httpserver


@pytest.fixture
def harnesses():
    """``harnesses(server, **client_options)``: a Harness on ``server``, its session closed after the test."""
    made: list[Harness] = []

    def make(server, **client_options) -> Harness:
        made.append(Harness(server, **client_options))
        return made[-1]

    yield make
    for harness in made:
        harness.session.close()


@pytest.fixture
def make_harness(server, harnesses):
    return lambda **client_options: harnesses(server, **client_options)


@pytest.fixture
def harness(make_harness):
    return make_harness()


@pytest.fixture
def dropping_harness(dropping_server, harnesses):
    """A Harness on the hand-written server, for the scripts that reset a connection."""
    return harnesses(dropping_server)


# --- success ----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_rating_is_fetched_with_exact_decimals_and_its_etag(harness, server):
    script(server, ok(etag='"abc"'))

    fetch = harness.fetch()

    assert fetch.error is None and fetch.obtained
    assert (fetch.http_status, fetch.attempts, fetch.retries, fetch.throttled) == (200, 1, 0, 0)
    assert fetch.etag == '"abc"' and not fetch.not_modified
    assert fetch.body["scores"]["overall"] == Decimal("71.25")
    assert isinstance(fetch.body["scores"]["environmental"], Decimal)
    assert fetch.body["coverage"]["holdings_total"] == Decimal(48)
    (request,) = harness.api_requests()
    assert request.path == "/v1/accounts/ACC-0000001/esg-rating"
    assert request.args.to_dict() == {"as_of": "2026-11-21"}
    assert request.headers["authorization"] == "Bearer tok-1"
    assert "if-none-match" not in request.headers


@pytest.mark.integration
def test_the_account_id_is_url_encoded_in_the_path(harness, server):
    script(server, ok("A B/C?D%"))

    fetch = harness.fetch("A B/C?D%")

    assert fetch.error is None
    target = raw_target(harness.api_requests()[0])
    assert target == "/v1/accounts/A%20B%2FC%3FD%25/esg-rating?as_of=2026-11-21"


@pytest.mark.integration
@pytest.mark.parametrize("account_id", [".", ".."])
def test_a_dot_segment_id_is_refused_instead_of_asking_for_another_resource(harness, server, account_id):
    fetch = harness.fetch(account_id)

    assert fetch.error == "account id cannot be sent in a URL path"
    assert fetch.attempts == 0 and harness.api_requests() == []


@pytest.mark.integration
def test_if_none_match_is_sent_and_a_304_reuses_the_held_rating(harness, server):
    script(server, Response(status=304))

    fetch = harness.fetch(etag='"v1"')

    assert harness.api_requests()[0].headers["if-none-match"] == '"v1"'
    assert fetch.not_modified and fetch.error is None
    assert (fetch.body, fetch.etag, fetch.http_status) == (None, '"v1"', 304)
    assert harness.client.stats.snapshot()["not_modified"] == 1


@pytest.mark.integration
def test_a_304_without_if_none_match_is_a_server_fault_and_retried(harness, server):
    script(server, Response(status=304), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.attempts == 2 and not fetch.not_modified


# --- transient errors: retried ----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(harness, server, status):
    script(server, Response(status=status), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.body is not None
    assert (fetch.attempts, fetch.retries, fetch.http_status) == (2, 1, 200)
    assert len(harness.api_requests()) == 2
    assert len(harness.delays) == 1 and harness.delays[0] >= MIN_RETRY_DELAY


@pytest.mark.integration
def test_503_with_retry_after_delays_only_its_own_retry(harness, server):
    script(server, Response(status=503, headers={"Retry-After": "7"}), ok())

    fetch = harness.fetch()

    assert fetch.error is None
    assert harness.delays == [7.0]
    assert harness.gate.hold_offs == []  # one account's 503 is no reason to slow every other account


@pytest.mark.integration
def test_429_with_retry_after_seconds(harness, server):
    script(server, json_response({"error": "rate_limited"}, status=429, Retry_After="2"), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.throttled == 1 and fetch.retries == 1
    assert harness.delays == [2.0]
    assert harness.gate.hold_offs == [2.0]
    assert harness.client.stats.snapshot()["throttled"] == 1


@pytest.mark.integration
def test_429_with_retry_after_zero_still_waits_a_little(harness, server):
    throttled = Response(status=429, headers={"Retry-After": "0"})
    script(server, throttled, throttled, ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.throttled == 2 and fetch.attempts == 3
    assert len(harness.delays) == 2 and min(harness.delays) >= MIN_RETRY_DELAY


@pytest.mark.integration
def test_429_with_retry_after_as_http_date(make_harness, server):
    harness = make_harness(backoff_max=60.0)  # so that a 30 s wait is honoured

    def throttle_until_30_seconds_from_now(request):
        when = datetime.now(UTC) + timedelta(seconds=30)
        return Response(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})

    server.expect_request(API).respond_with_handler(throttle_until_30_seconds_from_now)
    fetch = harness.fetch()

    # The date has whole seconds, so the wait is a little under 30 s; it must not fall back to the backoff.
    assert len(harness.delays) == 2 and all(25 <= delay <= 30 for delay in harness.delays)
    assert fetch.error == "HTTP 429 after 3 attempts" and fetch.throttled == 3


@pytest.mark.integration
def test_429_without_retry_after_pauses_every_worker_for_the_backoff_base(harness, server):
    script(server, Response(status=429), ok())

    fetch = harness.fetch()

    assert fetch.error is None
    assert harness.gate.hold_offs == [0.01]


@pytest.mark.integration
def test_a_retry_after_longer_than_the_longest_wait_ends_the_retries(harness, server):
    script(server, Response(status=429, headers={"Retry-After": "3600"}))

    fetch = harness.fetch()

    assert fetch.error == "HTTP 429 with Retry-After 3600 s, longer than the 30 s we wait, after 1 attempt"
    assert harness.delays == [] and len(harness.api_requests()) == 1
    assert harness.gate.hold_offs == [30.0]  # the other workers still pause, for as long as we would


# On the hand-written server (dropping_harness): pytest-httpserver cannot reset a connection mid-request.


@pytest.mark.integration
def test_a_dropped_connection_is_retried(dropping_harness):
    dropping_harness.server.script(Reply(drop=True), json_reply(rating_body(), ETag='"v1"'))

    fetch = dropping_harness.fetch()

    assert fetch.error is None and fetch.attempts == 2
    assert len(dropping_harness.api_requests()) == 2  # and no hidden retry inside urllib3
    assert dropping_harness.client.stats.snapshot()["connection_errors"] == 1


@pytest.mark.integration
def test_connections_that_keep_dropping_fail_the_account(dropping_harness):
    dropping_harness.server.script(*[Reply(drop=True)] * 3)

    fetch = dropping_harness.fetch()

    assert fetch.error == "connection error after 3 attempts"
    assert fetch.http_status is None and fetch.body is None
    assert len(dropping_harness.api_requests()) == 3


@pytest.mark.integration
def test_a_response_slower_than_the_timeout_is_retried(make_harness, server):
    harness = make_harness(timeout=0.2)
    server.expect_oneshot_request(API).with_post_hook(Delay(1.0)).respond_with_json(rating_body())
    script(server, ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.attempts == 2
    assert harness.client.stats.snapshot()["timeouts"] == 1


@pytest.mark.integration
def test_responses_that_stay_slow_fail_the_account_with_timeout(make_harness, server):
    harness = make_harness(timeout=0.2)
    for _ in range(3):
        server.expect_oneshot_request(API).with_post_hook(Delay(1.0)).respond_with_json(rating_body())

    fetch = harness.fetch()

    assert fetch.error == "timeout after 3 attempts"
    assert fetch.http_status is None and fetch.attempts == 3


@pytest.mark.integration
@pytest.mark.parametrize(
    ("bad_reply", "problem"),
    [
        (Response('{"account_id": "ACC-0000001", "scores": {'), "invalid JSON"),
        (Response(b"\xff\xfe not utf-8"), "invalid JSON"),
        (Response(""), "invalid JSON"),
        (json_response([1, 2, 3]), "unexpected body (not a JSON object)"),
        (json_response(rating_body(scores=None)), "unexpected body (scores is missing or not an object)"),
        (json_response(rating_body(primary_focus="Social")), "unexpected body (primary_focus is neither"),
        (json_response(rating_body("ACC-0000002")), "unexpected body (account_id is not the one asked for)"),
    ],
)
def test_a_200_we_cannot_use_is_retried_then_fails(harness, server, bad_reply, problem):
    script(server, bad_reply, bad_reply, bad_reply)

    fetch = harness.fetch()

    assert fetch.error.startswith(problem) and fetch.error.endswith("after 3 attempts")
    assert fetch.body is None and fetch.http_status == 200 and len(harness.api_requests()) == 3


@pytest.mark.integration
def test_a_200_we_cannot_use_then_a_good_one(harness, server):
    script(server, json_response(rating_body("SOMEONE-ELSE")), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.body["account_id"] == "ACC-0000001" and fetch.attempts == 2


# --- final errors: never retried --------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "HTTP 400 bad request"),
        (403, "HTTP 403 not entitled"),
        (404, "HTTP 404 unknown account"),
        (409, "HTTP 409"),
        (501, "HTTP 501"),
    ],
)
def test_final_errors_are_not_retried(harness, server, status, error):
    script(server, json_response({"error": "nope"}, status=status), ok())

    fetch = harness.fetch()

    assert fetch.error == error and fetch.http_status == status
    assert (fetch.attempts, fetch.retries) == (1, 0)
    assert len(harness.api_requests()) == 1 and harness.delays == []


# --- attempts and backoff ---------------------------------------------------------------------------


@pytest.mark.integration
def test_max_attempts_is_honoured(make_harness, server):
    harness = make_harness(max_attempts=5)
    script(server, *[Response(status=503) for _ in range(6)])

    fetch = harness.fetch()

    assert fetch.error == "HTTP 503 after 5 attempts"
    assert (fetch.attempts, fetch.retries) == (5, 4)
    assert len(harness.api_requests()) == 5 and len(harness.delays) == 4
    assert harness.client.stats.snapshot()["retries"] == 4


@pytest.mark.integration
def test_a_single_attempt_means_no_retry(make_harness, server):
    harness = make_harness(max_attempts=1)
    script(server, Response(status=503), ok())

    fetch = harness.fetch()

    assert fetch.error == "HTTP 503 after 1 attempt" and len(harness.api_requests()) == 1


@pytest.mark.integration
def test_backoff_is_exponential_with_full_jitter_and_capped(make_harness, server):
    harness = make_harness(max_attempts=6, backoff_base=1.0, backoff_max=3.0)
    script(server, *[Response(status=500) for _ in range(6)])

    harness.fetch()

    ceilings = [1.0, 2.0, 3.0, 3.0, 3.0]  # base * 2**(n-1), capped at backoff_max
    assert len(harness.delays) == 5
    assert all(MIN_RETRY_DELAY <= delay <= ceiling for delay, ceiling in zip(harness.delays, ceilings))


@pytest.mark.integration
def test_the_larger_of_retry_after_and_backoff_is_used(make_harness, server):
    harness = make_harness(backoff_base=10.0, backoff_max=20.0)
    script(server, Response(status=503, headers={"Retry-After": "1"}), ok())

    harness.fetch()

    assert 1.0 <= harness.delays[0] <= 10.0


# --- 401: refresh the token and repeat once ---------------------------------------------------------


def answer_401_to(stale: str):
    def handle(request):
        if request.headers.get("authorization") == f"Bearer {stale}":
            return Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return ok()

    return handle


@pytest.mark.integration
def test_a_401_refreshes_the_token_and_repeats_once_without_spending_an_attempt(harness, server):
    server.expect_request(API).respond_with_handler(answer_401_to("tok-1"))

    fetch = harness.fetch()

    assert fetch.error is None and fetch.attempts == 1 and fetch.retries == 0
    assert [r.headers["authorization"] for r in harness.api_requests()] == ["Bearer tok-1", "Bearer tok-2"]
    assert len(server.requests_to("/token")) == 2


@pytest.mark.integration
def test_a_second_401_in_a_row_is_an_error_not_a_loop(harness, server):
    script(server, Response(status=401), Response(status=401), ok())

    fetch = harness.fetch()

    assert fetch.error == "HTTP 401 after token refresh" and fetch.http_status == 401
    assert fetch.attempts == 1 and len(harness.api_requests()) == 2


@pytest.mark.integration
def test_thirty_threads_getting_a_401_cause_one_token_request(make_harness, server):
    harness = make_harness(gate=RequestGate(rate_per_second=10_000, max_in_flight=32))
    all_stale_requests_arrived = threading.Barrier(30)
    reject_stale = answer_401_to("tok-1")

    def handle(request):
        if request.headers.get("authorization") == "Bearer tok-1":
            all_stale_requests_arrived.wait(timeout=10)  # every thread holds the old token before any 401
        return reject_stale(request)

    server.expect_request(API).respond_with_handler(handle)
    results = []
    threads = [threading.Thread(target=lambda: results.append(harness.fetch())) for _ in range(30)]
    harness.tokens.token()  # all 30 threads start with tok-1
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert len(results) == 30 and all(fetch.error is None for fetch in results)
    assert len(server.requests_to("/token")) == 2
    assert harness.client.stats.snapshot()["by_status"] == {200: 30, 401: 30}


# --- statistics -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_stats_add_up_over_accounts(dropping_harness):
    # On the hand-written server: one of the answers resets the connection.
    good = json_reply(rating_body(), ETag='"v1"')
    dropping_harness.server.script(
        Reply(status=429, headers={"Retry-After": "0"}), good, Reply(status=404), Reply(drop=True), good
    )

    for _ in range(3):
        dropping_harness.fetch()

    assert dropping_harness.client.stats.snapshot() == {
        "requests": 5,
        "by_status": {200: 2, 404: 1, 429: 1},
        "retries": 2,
        "throttled": 1,
        "not_modified": 0,
        "connection_errors": 1,
        "timeouts": 0,
    }


# --- the shared session -----------------------------------------------------------------------------


@pytest.mark.unit
def test_the_session_pool_is_sized_for_the_workers_and_has_no_urllib3_retries():
    session = build_session(pool_size=48, ca_bundle=None)
    adapter = session.get_adapter("https://esg.example")

    assert adapter._pool_maxsize == 48 and adapter._pool_block is True
    assert adapter.max_retries.total == 0 and adapter.max_retries.read is False
    assert session.verify is True


@pytest.mark.unit
def test_the_session_keeps_its_ca_bundle_even_if_the_environment_names_another(tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/some-other-bundle.pem")
    session = build_session(pool_size=4, ca_bundle=str(bundle))

    settings = session.merge_environment_settings("https://esg.example/v1", {}, None, None, None)

    assert settings["verify"] == str(bundle)


@pytest.mark.unit
def test_a_missing_ca_bundle_is_reported_when_the_session_is_built(tmp_path):
    with pytest.raises(ValueError, match="is not a file"):
        build_session(pool_size=4, ca_bundle=str(tmp_path / "missing.pem"))


@pytest.mark.integration
def test_proxy_variables_are_still_honoured_with_no_proxy_exceptions(monkeypatch, httpserver):
    proxy = httpserver
    proxy.expect_oneshot_request(API).respond_with_json({"via": "proxy"})
    proxy.expect_oneshot_request(API).respond_with_json({"via": "proxy"})
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    session = build_session(pool_size=2, ca_bundle=None)

    response = session.get("http://esg.invalid/v1/accounts/ACC-1/esg-rating", timeout=5)
    assert response.json() == {"via": "proxy"}
    # A proxy receives the absolute URL of the request it forwards.
    assert raw_target(proxy.requests_to()[0]).startswith("http://esg.invalid/v1/accounts/ACC-1")

    with pytest.raises(requests.ConnectionError):  # NO_PROXY: sent directly, and the host does not exist
        session.get("http://direct.invalid/v1/accounts/ACC-1/esg-rating", timeout=5)
    assert len(proxy.requests_to()) == 1


# --- the ratings transport (urllib3, the hot path) -------------------------------------------------------


@pytest.mark.integration
def test_the_ratings_transport_honours_proxy_variables_with_no_proxy_exceptions(monkeypatch, httpserver):
    proxy = httpserver
    proxy.expect_oneshot_request(API).respond_with_json({"via": "proxy"})
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    transport = RatingTransport(pool_size=2, ca_bundle=None)

    response = transport.get("http://esg.invalid/v1/accounts/ACC-1/esg-rating?as_of=2026-11-20", {}, 5)
    assert response.status_code == 200 and json.loads(response.content) == {"via": "proxy"}
    target = raw_target(proxy.requests_to()[0])
    assert target == "http://esg.invalid/v1/accounts/ACC-1/esg-rating?as_of=2026-11-20"

    with pytest.raises(requests.ConnectionError):  # NO_PROXY: sent directly, and the host does not exist
        transport.get("http://direct.invalid/v1/accounts/ACC-1/esg-rating", {}, 5)
    assert len(proxy.requests_to()) == 1


@pytest.mark.integration
def test_the_ratings_transport_raises_the_requests_errors_the_client_handles():
    transport = RatingTransport(pool_size=2, ca_bundle=None)
    with ScriptedServer() as server:  # hand-written: the second answer resets the connection
        server.script(Reply(delay=1.0), Reply(drop=True), json_reply({}, ETag='"e1"'))
        with pytest.raises(requests.ReadTimeout):
            transport.get(server.url + "/v1/slow", {}, 0.2)
        with pytest.raises(requests.ConnectionError):
            transport.get(server.url + "/v1/dropped", {}, 5)
        response = transport.get(server.url + "/v1/fine", {"If-None-Match": '"e0"'}, 5)
        assert response.headers.get("etag") == '"e1"'  # header names in any case
        assert server.requests_to()[-1].headers["if-none-match"] == '"e0"'
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as refused:  # nothing listens there
        transport.get(f"http://127.0.0.1:{port}/v1/refused", {}, 5)
    assert not isinstance(refused.value, requests.Timeout)
    with pytest.raises(ValueError, match="is not a file"):
        RatingTransport(pool_size=2, ca_bundle="/nonexistent/ca.pem")


@pytest.mark.integration
def test_a_netrc_entry_for_the_api_host_never_replaces_the_bearer_token(monkeypatch, tmp_path, httpserver):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-our-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    httpserver.expect_oneshot_request("/v1/x").respond_with_json({})
    session = build_session(pool_size=2, ca_bundle=None)
    session.get(httpserver.url + "/v1/x", headers={"Authorization": "Bearer ours"}, timeout=5)
    assert httpserver.requests_to()[0].headers["authorization"] == "Bearer ours"


# --- size and time bounds of a response (docs/api-contract.md, "Size and time") ----------------------


def oversized(declared: bool) -> Response:
    """A rating padded past 1 MiB; without a Content-Length (chunked) when ``declared`` is false."""
    body = json.dumps(rating_body(coverage={"padding": "x" * (1024 * 1024)})).encode()
    if declared:
        return Response(body, content_type="application/json")
    return Response(iter([body[:1000], body[1000:]]), content_type="application/json")


@pytest.mark.integration
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_rating_body_over_1_mib_is_a_server_fault_and_retried(harness, server, declared):
    script(server, oversized(declared), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.attempts == 2
    assert fetch.body["coverage"]["holdings_total"] == Decimal(48)  # the second, ordinary answer


@pytest.mark.integration
def test_rating_bodies_that_stay_over_1_mib_fail_the_account_naming_the_fault(harness, server):
    script(server, *[oversized(True)] * 3)

    fetch = harness.fetch()

    assert fetch.error == "response body over 1 MiB after 3 attempts"
    assert fetch.body is None


@pytest.mark.integration
def test_a_trickled_body_frees_the_worker_within_the_timeout(make_harness, server):
    harness = make_harness(timeout=1.0, max_attempts=1)
    body = json.dumps(rating_body()).encode()
    script(server, trickled_response(body, interval=0.05))  # each byte in 0.05 s; the whole in over 10 s

    started = time.monotonic()
    fetch = harness.fetch()
    elapsed = time.monotonic() - started

    assert fetch.error == "timeout after 1 attempt"
    assert harness.client.stats.snapshot()["timeouts"] == 1
    assert len(body) * 0.05 > 10
    assert elapsed < 1.0 + 0.5  # the timeout and a little slack, not the trickle's length


@pytest.mark.integration
def test_after_a_trickled_body_the_retry_gets_the_rating(make_harness, server):
    harness = make_harness(timeout=0.5)
    script(server, trickled_response(json.dumps(rating_body()).encode(), interval=0.05), ok())

    fetch = harness.fetch()

    assert fetch.error is None and fetch.attempts == 2


@pytest.mark.integration
def test_a_declared_length_over_1_mib_is_refused_without_waiting_for_the_body(make_harness, server):
    harness = make_harness(timeout=2.0, max_attempts=1)

    def a_few_bytes_then_nothing():
        yield b'{"account_id": '
        time.sleep(5)

    server.expect_oneshot_request(API).respond_with_response(
        Response(
            a_few_bytes_then_nothing(),
            headers={"Content-Length": str(2 * 1024 * 1024)},
            content_type="application/json",
            direct_passthrough=True,
        )  # fmt: skip
    )

    started = time.monotonic()
    fetch = harness.fetch()

    assert fetch.error == "response body over 1 MiB after 1 attempt"
    assert time.monotonic() - started < 1.0  # refused on its Content-Length, not read until the timeout


@pytest.mark.integration
def test_an_endless_body_is_read_up_to_1_mib_and_no_further(make_harness, server):
    harness = make_harness(timeout=5.0, max_attempts=1)

    def endless():
        while True:
            yield b"x" * 65536

    server.expect_oneshot_request(API).respond_with_response(
        Response(endless(), content_type="application/json")  # chunked: no length to refuse it on
    )

    fetch = harness.fetch()

    assert fetch.error == "response body over 1 MiB after 1 attempt"  # not a timeout: it stopped reading


@pytest.mark.integration
def test_trickled_headers_free_the_worker_within_the_timeout(harnesses, server):
    tokens = harnesses(server).tokens  # the token from ``server``, the rating from the trickle
    with HeaderTricklingServer(interval=0.05) as trickling:
        transport = RatingTransport(pool_size=2, ca_bundle=None)
        client = EsgClient(transport, trickling.url, tokens, RecordingGate(), timeout=1.0, max_attempts=1)
        started = time.monotonic()
        fetch = client.fetch_rating("ACC-0000001", AS_OF)
        elapsed = time.monotonic() - started
        transport.close()

    assert fetch.error == "timeout after 1 attempt"
    assert elapsed < 1.0 + 0.5  # the headers alone would take over 12 s, each byte within the read timeout
