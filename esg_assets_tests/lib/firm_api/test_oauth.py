"""TokenProvider against a real token endpoint on loopback (pytest-httpserver): caching, expiry, invalidation,
errors, retries."""

from __future__ import annotations

import threading

import pytest
from pytest_httpserver.hooks import Delay
from werkzeug import Response

from esg_assets.lib.firm_api.errors import AuthError
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.retrying import MIN_RETRY_DELAY
from esg_assets_tests.support.loopback_http import json_response, token_endpoint
from esg_assets_tests.support.scripted_server import Reply, ScriptedServer, json_reply, token_handler

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-never-printed"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session():
    with build_session(pool_size=64, ca_bundle=None) as shared:
        yield shared


def make_provider(session, server, **kwargs) -> TokenProvider:
    kwargs.setdefault("sleep", lambda seconds: None)  # retries here are about counts, not waiting
    return TokenProvider(session, server.url + "/token", "job-client", SECRET, timeout=2.0, **kwargs)


def test_token_is_fetched_with_client_credentials_and_cached(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())
    provider = make_provider(session, httpserver)

    assert provider.token() == "tok-1"
    assert provider.token() == "tok-1"

    (request,) = httpserver.requests_to()
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {
        "grant_type": "client_credentials",
        "client_id": "job-client",
        "client_secret": SECRET,
    }


def test_token_is_refreshed_shortly_before_it_expires(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint(expires_in=100))
    clock = FakeClock()
    provider = make_provider(session, httpserver, clock=clock)

    assert provider.token() == "tok-1"
    clock.now += 89.9  # the margin is a tenth of a short lifetime: refresh from 90 s on
    assert provider.token() == "tok-1"
    clock.now += 0.1
    assert provider.token() == "tok-2"
    assert len(httpserver.requests_to("/token")) == 2


def test_a_long_lived_token_is_refreshed_a_minute_early(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint(expires_in=3600))
    clock = FakeClock()
    provider = make_provider(session, httpserver, clock=clock)

    provider.token()
    clock.now += 3539
    assert provider.token() == "tok-1"
    clock.now += 1
    assert provider.token() == "tok-2"


def test_a_token_without_expires_in_is_kept_until_invalidated(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint(expires_in=None))
    clock = FakeClock()
    provider = make_provider(session, httpserver, clock=clock)

    assert provider.token() == "tok-1"
    clock.now += 10**6
    assert provider.token() == "tok-1"
    provider.invalidate("tok-1")
    assert provider.token() == "tok-2"


def test_invalidate_ignores_a_token_that_is_no_longer_cached(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())
    provider = make_provider(session, httpserver)
    provider.token()

    provider.invalidate("some-older-token")
    assert provider.token() == "tok-1"

    provider.invalidate("tok-1")
    assert provider.token() == "tok-2"
    provider.invalidate("tok-1")  # a late 401 for the old token must not throw away the new one
    assert provider.token() == "tok-2"
    assert len(httpserver.requests_to("/token")) == 2


def test_thirty_threads_invalidating_the_same_token_cause_one_refresh(httpserver, session):
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())
    provider = make_provider(session, httpserver)
    stale = provider.token()
    barrier = threading.Barrier(30)
    results: list[str] = []

    def got_401() -> None:
        barrier.wait(timeout=10)
        provider.invalidate(stale)
        results.append(provider.token())

    threads = [threading.Thread(target=got_401) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == ["tok-2"] * 30
    assert len(httpserver.requests_to("/token")) == 2


def test_sixty_four_threads_asking_at_once_cause_one_token_request(httpserver, session):
    # Slow: the others must wait for the one request in flight.
    httpserver.expect_request("/token").with_post_hook(Delay(0.2)).respond_with_handler(token_endpoint())
    provider = make_provider(session, httpserver)
    barrier = threading.Barrier(64)
    results: list[str] = []

    def ask() -> None:
        barrier.wait(timeout=10)
        results.append(provider.token())

    threads = [threading.Thread(target=ask) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == ["tok-1"] * 64
    assert len(httpserver.requests_to("/token")) == 1


def respond(httpserver, *responses: Response) -> None:
    """Each of ``responses`` answers one request to the token endpoint, in order."""
    for response in responses:
        httpserver.expect_oneshot_request("/token").respond_with_response(response)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            json_response({"error": "invalid_client"}, status=401),
            "HTTP 401 invalid_client (client id or secret rejected)",
        ),
        (json_response({"error": "unsupported_grant_type"}, status=400), "HTTP 400 unsupported_grant_type"),
        (json_response({"error": "a very long text with spaces " + SECRET}, status=400), "HTTP 400"),
        (Response("forbidden", status=403), "HTTP 403"),
        (Response("<html>not json</html>", status=200), "the token response is not JSON"),
        (json_response(["tok"]), "the token response is not a JSON object"),
        (
            json_response({"token_type": "Bearer", "expires_in": 3600}),
            "the token response has no access_token",
        ),
        (json_response({"access_token": "", "expires_in": 3600}), "the token response has no access_token"),
        (json_response({"access_token": "tok-x", "token_type": "mac"}), "token_type is not Bearer"),
        (json_response({"access_token": "tok-x", "expires_in": -5}), "expires_in is not a positive number"),
        (json_response({"access_token": "tok-x", "expires_in": True}), "expires_in is not a positive number"),
    ],
)
def test_token_endpoint_errors_raise_auth_error_without_secrets(httpserver, session, reply, expected):
    respond(httpserver, reply)
    provider = make_provider(session, httpserver)

    with pytest.raises(AuthError) as raised:
        provider.token()

    message = str(raised.value)
    assert expected in message
    assert "/token" in message  # names the endpoint
    assert SECRET not in message and "tok-x" not in message
    assert len(httpserver.requests_to()) == 1  # not retried


def test_expires_in_sent_as_a_string_is_accepted(httpserver, session):
    respond(
        httpserver, json_response({"access_token": "tok-s", "token_type": "bearer", "expires_in": "3600"})
    )
    assert make_provider(session, httpserver).token() == "tok-s"


def test_transient_token_endpoint_errors_are_retried(session):
    # The hand-written server: the third answer resets the connection, which pytest-httpserver cannot do.
    delays: list[float] = []
    with ScriptedServer(handler=token_handler()) as server:  # answers once the script is used up
        server.script(
            Reply(status=503),
            json_reply({"error": "slow_down"}, status=429, Retry_After="0"),
            Reply(drop=True),
        )
        provider = make_provider(session, server, max_attempts=4, sleep=delays.append)

        assert provider.token() == "tok-1"
        assert len(server.requests_to()) == 4
    assert len(delays) == 3 and min(delays) >= MIN_RETRY_DELAY


def test_a_slow_token_endpoint_times_out_and_is_retried(httpserver, session):
    slow = httpserver.expect_oneshot_request("/token").with_post_hook(Delay(1.0))
    slow.respond_with_json({"access_token": "late"})
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())  # once the slow one is used up
    provider = TokenProvider(
        session, httpserver.url + "/token", "job-client", SECRET, timeout=0.2, sleep=lambda seconds: None
    )

    assert provider.token() == "tok-1"
    assert len(httpserver.requests_to()) == 2


def test_transient_errors_that_persist_raise_auth_error(httpserver, session):
    respond(httpserver, *[Response(status=503) for _ in range(3)])
    provider = make_provider(session, httpserver, max_attempts=3)

    with pytest.raises(AuthError, match=r"HTTP 503 after 3 attempt\(s\)"):
        provider.token()
    assert len(httpserver.requests_to()) == 3


def test_refused_credentials_are_not_offered_again(httpserver, session):
    respond(
        httpserver,
        json_response({"error": "invalid_client"}, status=401),
        json_response({"access_token": "tok-x"}),
    )
    provider = make_provider(session, httpserver)

    for _ in range(3):  # e.g. every worker thread after the first one's failure
        with pytest.raises(AuthError, match="invalid_client"):
            provider.token()
    assert len(httpserver.requests_to()) == 1  # repeated refusals can get a client locked out


def test_an_unavailable_token_endpoint_is_asked_again_only_after_a_pause(httpserver, session):
    respond(httpserver, Response(status=503), json_response({"access_token": "tok-later"}))
    clock = FakeClock()
    provider = make_provider(session, httpserver, clock=clock, max_attempts=1, backoff_max=10.0)

    with pytest.raises(AuthError, match=r"HTTP 503 after 1 attempt\(s\)"):
        provider.token()
    clock.now += 9.9
    with pytest.raises(AuthError, match="HTTP 503"):
        provider.token()  # within the pause: the same error, no request
    assert len(httpserver.requests_to()) == 1

    clock.now += 0.1
    assert provider.token() == "tok-later"


def test_repr_does_not_show_the_secret(httpserver, session):
    provider = make_provider(session, httpserver)
    assert SECRET not in repr(provider)
    assert "job-client" in repr(provider)
