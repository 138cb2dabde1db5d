"""The sandbox serves the firm's auth, AMS and ESG contract: tested over real loopback HTTP."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
import requests

from esg_assets.sandbox.data import HOSTILE_KINDS, SandboxData
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.paths import REPO_ROOT

AS_OF = date(2026, 11, 21)
NEXT_DAY = date(2026, 11, 22)
ACCOUNT_ID_RULE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # api-contract section 2
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


# --- helpers -------------------------------------------------------------------------------------------
def grant(server: SandboxServer) -> str:
    response = requests.post(
        server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": server.config.client_id,
            "client_secret": server.config.client_secret,
        },
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def authorized_session(server: SandboxServer) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {grant(server)}"
    return session


def rating_url(server: SandboxServer, account_id: str) -> str:
    return f"{server.esg_base_url}/v1/accounts/{account_id}/esg-rating"


def get_rating(session, server, account_id, as_of=AS_OF, etag=None) -> requests.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return session.get(
        rating_url(server, account_id), params={"as_of": as_of.isoformat()}, headers=headers, timeout=5
    )


def get_page(session, server, **params) -> requests.Response:
    return session.get(f"{server.ams_base_url}/v1/accounts", params={"status": "active", **params}, timeout=5)


def walk_accounts(session, server, limit: int) -> list[dict]:
    """Every row of an AMS walk, as a careful client gets them: transient errors retried at once."""
    rows: list[dict] = []
    cursor = None
    for _ in range(100_000):
        params = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = get_page(session, server, **params)
        if response.status_code in TRANSIENT_STATUSES:
            continue
        assert response.status_code == 200, response.text
        # Decimals: a number of any length where an id should be (hostile mode) is read, and is no string.
        page = json.loads(response.content, parse_int=Decimal)
        rows.extend(page["data"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return rows
        assert isinstance(page["next_cursor"], str) and page["next_cursor"]
        cursor = page["next_cursor"]
    raise AssertionError("the AMS walk never ended")


def active_accounts_of(rows: list[dict]) -> list[tuple[str, str]]:
    """What a careful client keeps: valid ids, the latest row per id, status active; sorted by id."""
    latest: dict[str, dict] = {}
    for row in rows:
        account_id = row.get("account_id")
        if not isinstance(account_id, str) or not ACCOUNT_ID_RULE.fullmatch(account_id):
            continue
        held = latest.get(account_id)
        if held is None or row["updated_at"] > held["updated_at"]:  # ISO Z timestamps sort as text
            latest[account_id] = row
    return sorted((a, row["account_name"]) for a, row in latest.items() if row["status"] == "active")


def parallel(function, items, workers: int = 4) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


@contextmanager
def sandbox_and_session(**config):
    """A sandbox of its own for one test, and a session holding a token for it."""
    with SandboxServer(SandboxConfig(**config)) as server, authorized_session(server) as session:
        yield server, session


def per_thread_session(server: SandboxServer):
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = authorized_session(server)
        return local.session

    return session


def decimals(value) -> int:
    return max(0, -Decimal(str(value)).as_tuple().exponent)


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SandboxConfig(accounts=2000, seed=7)) as server:
        yield server


@pytest.fixture(scope="module")
def session(sandbox):
    with authorized_session(sandbox) as session:
        yield session


# --- authentication ------------------------------------------------------------------------------------
@pytest.mark.integration
def test_token_grant_returns_a_bearer_token(sandbox):
    response = requests.post(
        sandbox.token_url,
        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
        timeout=5,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and len(body["access_token"]) >= 20
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.integration
def test_token_grant_accepts_http_basic_client_authentication(sandbox):
    response = requests.post(
        sandbox.token_url, data={"grant_type": "client_credentials"}, auth=("sandbox", "sandbox"), timeout=5
    )
    assert response.status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    "form, status, error",
    [
        (
            {"grant_type": "password", "client_id": "sandbox", "client_secret": "sandbox"},
            400,
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "someone", "client_secret": "sandbox"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
    ],
)
def test_token_grant_errors(sandbox, form, status, error):
    response = requests.post(sandbox.token_url, data=form, timeout=5)
    assert response.status_code == status
    assert response.json() == {"error": error}


@pytest.mark.integration
@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic c2FuZGJveDpzYW5kYm94", "Bearer "]
)
def test_requests_without_a_valid_token_get_401(sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for url, params in [
        (f"{sandbox.ams_base_url}/v1/accounts", {"status": "active"}),
        (rating_url(sandbox, "ACC-0000001"), {"as_of": "2026-11-21"}),
    ]:
        response = requests.get(url, params=params, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.integration
def test_revoked_tokens_get_401_until_a_new_one_is_granted():
    with sandbox_and_session(accounts=10) as (server, session):
        assert get_rating(session, server, "ACC-0000001").status_code == 200
        server.revoke_tokens()
        assert get_rating(session, server, "ACC-0000001").status_code == 401
        assert get_page(session, server).status_code == 401
        session.headers["Authorization"] = f"Bearer {grant(server)}"
        assert get_rating(session, server, "ACC-0000001").status_code == 200


@pytest.mark.integration
def test_tokens_expire_after_their_ttl():
    with SandboxServer(SandboxConfig(accounts=10, token_ttl=0.2)) as server:
        response = requests.post(
            server.token_url,
            data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
            timeout=5,
        )
        assert response.json()["expires_in"] == 1  # a sub-second TTL is announced rounded up
        token = response.json()["access_token"]
        time.sleep(0.4)
        expired = requests.get(
            rating_url(server, "ACC-0000001"),
            params={"as_of": "2026-11-21"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert expired.status_code == 401
        assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# --- AMS -----------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_ams_walk_pages_to_the_end(sandbox, session):
    rows = walk_accounts(session, sandbox, limit=100)
    assert rows == list(sandbox.data.account_rows())
    assert len(rows) > 2000  # the active accounts plus the noise


@pytest.mark.integration
def test_ams_default_page_size_is_100(sandbox, session):
    page = get_page(session, sandbox).json()
    assert len(page["data"]) == 100 and page["has_more"] is True


@pytest.mark.integration
@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "10.5", ""])
def test_ams_rejects_a_limit_outside_1_to_1000(sandbox, session, limit):
    response = get_page(session, sandbox, limit=limit)
    assert response.status_code == 400


@pytest.mark.integration
def test_ams_accepts_limits_1_and_1000(sandbox, session):
    assert len(get_page(session, sandbox, limit=1).json()["data"]) == 1
    assert len(get_page(session, sandbox, limit=1000).json()["data"]) == 1000


@pytest.mark.integration
def test_ams_rejects_an_unknown_cursor(sandbox, session):
    response = get_page(session, sandbox, limit=10, cursor="not-a-cursor")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_cursor"}


@pytest.mark.integration
def test_ams_cursors_expire_and_can_be_reused_until_then():
    with sandbox_and_session(accounts=500, cursor_ttl=0.3) as (server, session):
        cursor = get_page(session, server, limit=10).json()["next_cursor"]
        first = get_page(session, server, limit=10, cursor=cursor)
        again = get_page(session, server, limit=10, cursor=cursor)  # a retried page gets the same rows
        assert first.status_code == again.status_code == 200 and first.json()["data"] == again.json()["data"]
        time.sleep(0.5)
        expired = get_page(session, server, limit=10, cursor=cursor)
        assert expired.status_code == 400 and expired.json() == {"error": "invalid_cursor"}


@pytest.mark.integration
@pytest.mark.parametrize("limit", [1000, 100, 37])
def test_expected_active_accounts_match_a_careful_walk(sandbox, session, limit):
    rows = walk_accounts(session, sandbox, limit=limit)
    expected = list(sandbox.data.expected_active_accounts())
    assert active_accounts_of(rows) == expected
    # The walk really did carry every kind of noise a client must handle.
    ids = [row.get("account_id", "<absent>") for row in rows]
    assert len(ids) - len(set(map(repr, ids))) >= 20  # repeated accounts
    assert {"inactive", "closed"} <= {row["status"] for row in rows}
    assert any("account_id" not in row for row in rows)
    assert {None, "", "bad id!", "A" * 65, 1234567} <= {
        row.get("account_id", "<absent>")
        for row in rows
        if not isinstance(row.get("account_id"), str) or not ACCOUNT_ID_RULE.fullmatch(row["account_id"])
    }
    assert 1900 < len(expected) < 2000  # a few repeats close their account


@pytest.mark.integration
def test_expected_active_accounts_include_hostile_names(sandbox):
    names = [name for _, name in sandbox.data.expected_active_accounts()]
    for marker in [",", '"', "\n", "é", "ü"]:
        assert any(marker in name for name in names), marker
    for start in ["=", "+", "-", "@", "\t", "\r"]:
        assert any(name.startswith(start) for name in names), repr(start)
    assert any(not name.isascii() and not any(c in name for c in "éüöåø") for name in names)  # other scripts
    assert max(map(len, names)) <= 500 and max(map(len, names)) > 400


@pytest.mark.integration
def test_ams_without_noise_lists_exactly_the_active_accounts():
    with sandbox_and_session(accounts=250, ams_noise=False) as (server, session):
        rows = walk_accounts(session, server, limit=100)
        assert [(row["account_id"], row["account_name"]) for row in rows] == list(
            server.data.expected_active_accounts()
        )
        assert [row["account_id"] for row in rows] == [f"ACC-{n:07d}" for n in range(1, 251)]


@pytest.mark.integration
def test_the_listing_has_empty_pages_before_its_end(sandbox):
    rows, empty_pages, position = [], 0, sandbox.data.FIRST_PAGE
    while position is not None:
        page = sandbox.data.account_page(position, 1)
        rows.extend(page.rows)
        empty_pages += not page.rows and page.next_position is not None
        position = page.next_position
    assert empty_pages >= 1
    assert rows == list(sandbox.data.account_rows())


@pytest.mark.unit
def test_a_million_account_sandbox_answers_without_building_its_accounts():
    data = SandboxData(SandboxConfig(accounts=1_000_000))
    assert data.rating("ACC-1000000", AS_OF)["account_id"] == "ACC-1000000"
    assert data.rating("ACC-9999999", AS_OF) is None
    first_page = data.account_page(data.FIRST_PAGE, 10)
    assert len(first_page.rows) == 10 and first_page.next_position is not None


# --- ESG ratings ---------------------------------------------------------------------------------------
def assert_complete_rating(body: dict, account_id: str) -> None:
    assert set(body) == {
        "account_id",
        "analysis_date",
        "result_status",
        "scores",
        "primary_focus",
        "coverage",
    }
    assert body["account_id"] == account_id and body["result_status"] == "Complete"
    assert date.fromisoformat(body["analysis_date"]) <= AS_OF
    assert set(body["scores"]) == {"overall", "environmental", "social", "governance"}
    for score in body["scores"].values():
        assert isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 100
    pillars = {pillar: body["scores"][pillar.lower()] for pillar in ("Environmental", "Social", "Governance")}
    assert body["primary_focus"]["pillar"] == max(pillars, key=pillars.get)
    assert body["primary_focus"]["score"] == max(pillars.values())
    coverage = body["coverage"]
    assert 0 <= coverage["covered_weight_pct"] <= 100
    assert 0 <= coverage["holdings_rated"] <= coverage["holdings_total"]


@pytest.mark.integration
def test_rating_body_follows_the_contract(sandbox, session):
    for number in range(1, 101):
        account_id = f"ACC-{number:07d}"
        response = get_rating(session, sandbox, account_id)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert re.fullmatch(r'"[0-9a-f]+"', response.headers["ETag"])
        assert_complete_rating(response.json(), account_id)


@pytest.mark.integration
def test_scores_carry_awkward_decimals(sandbox):
    scores = [
        score
        for number in range(1, 2001)
        for score in json.loads(
            json.dumps(sandbox.data.rating(f"ACC-{number:07d}", AS_OF)["scores"]), parse_float=Decimal
        ).values()
    ]
    assert any(isinstance(score, int) for score in scores)
    assert any(decimals(score) > 2 for score in scores)
    assert any(decimals(score) == 3 and str(score).endswith("5") for score in scores)  # exact halves


@pytest.mark.integration
def test_ratings_are_deterministic(sandbox, session):
    first, second = get_rating(session, sandbox, "ACC-0000042"), get_rating(session, sandbox, "ACC-0000042")
    assert first.content == second.content and first.headers["ETag"] == second.headers["ETag"]
    same_seed = SandboxData(SandboxConfig(accounts=2000, seed=7))
    other_seed = SandboxData(SandboxConfig(accounts=2000, seed=8))
    assert same_seed.etag("ACC-0000042", AS_OF) == first.headers["ETag"]
    assert sandbox.data.etag("ACC-0000042", AS_OF) == first.headers["ETag"]
    assert other_seed.etag("ACC-0000042", AS_OF) != first.headers["ETag"]
    assert json.loads(first.content) == sandbox.data.rating("ACC-0000042", AS_OF)


@pytest.mark.integration
def test_if_none_match_with_the_current_etag_gets_304(sandbox, session):
    etag = get_rating(session, sandbox, "ACC-0000005").headers["ETag"]
    not_modified = get_rating(session, sandbox, "ACC-0000005", etag=etag)
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert get_rating(session, sandbox, "ACC-0000005", etag=f'"other", W/{etag}').status_code == 304
    assert get_rating(session, sandbox, "ACC-0000005", etag='"other"').status_code == 200


@pytest.mark.integration
def test_ratings_change_from_one_day_to_the_next_for_about_daily_change_rate(sandbox):
    account_ids = [f"ACC-{n:07d}" for n in range(1, 2001)]
    data = sandbox.data
    changed = {a for a in account_ids if data.etag(a, NEXT_DAY) != data.etag(a, AS_OF)}
    assert 60 <= len(changed) <= 140  # 5% of 2,000 = 100; a binomial sd is about 10

    # Over HTTP, a client holding today's ETag gets 304 tomorrow exactly for the unchanged ratings.
    session = per_thread_session(sandbox)
    sample = account_ids[:400]
    held = dict(zip(sample, parallel(lambda a: get_rating(session(), sandbox, a).headers["ETag"], sample)))
    tomorrow = parallel(lambda a: get_rating(session(), sandbox, a, as_of=NEXT_DAY, etag=held[a]), sample)
    served_changed = {a for a, response in zip(sample, tomorrow) if response.status_code == 200}
    assert served_changed == changed & set(sample)
    assert {response.status_code for response in tomorrow} == {200, 304}
    for response in tomorrow:
        if response.status_code == 200:  # a new version is dated the day it was computed
            assert response.json()["analysis_date"] == NEXT_DAY.isoformat()


@pytest.mark.integration
def test_unknown_accounts_get_404(sandbox, session):
    for account_id in ["ACC-9999999", "ACC-0000000", "ACC-1", "acc-0000001", "nobody"]:
        response = get_rating(session, sandbox, account_id)
        assert response.status_code == 404, account_id


@pytest.mark.integration
@pytest.mark.parametrize(
    "as_of", [None, "", "2026-13-01", "20261121", "2026-1-1", "2026-11-21T00:00:00", "tomorrow"]
)
def test_a_missing_or_malformed_as_of_gets_400(sandbox, session, as_of):
    params = {} if as_of is None else {"as_of": as_of}
    response = session.get(rating_url(sandbox, "ACC-0000001"), params=params, timeout=5)
    assert response.status_code == 400


def classify(first: requests.Response, second: requests.Response | None) -> str:
    """What kind of account this is, from its first rating request (and the second, after a failure)."""
    if first.status_code != 200 or not first.headers.get("ETag"):
        if second.status_code == first.status_code and second.status_code != 200:
            return "failed"
        assert second.status_code == 200
        return "transient"
    body = first.json()
    if body["result_status"] == "Unrated":
        assert all(score is None for score in body["scores"].values()) and body["primary_focus"] is None
        return "unrated"
    if body["result_status"] == "Partial":
        incomplete = (
            any(score is None for score in body["scores"].values())
            or body["primary_focus"] is None
            or body.get("analysis_date") is None
        )
        assert incomplete, body
        return "partial"
    return "complete"


@pytest.mark.integration
def test_failure_partial_and_transient_rates_are_roughly_honoured():
    config = SandboxConfig(
        accounts=1000, seed=3, failure_rate=0.1, partial_rate=0.2, transient_error_rate=0.1
    )
    with SandboxServer(config) as server:
        session = per_thread_session(server)

        def first_and_retry(number: int):
            first = get_rating(session(), server, f"ACC-{number:07d}")
            succeeded = first.status_code == 200 and first.headers.get("ETag")
            return first, None if succeeded else get_rating(session(), server, f"ACC-{number:07d}")

        pairs = parallel(first_and_retry, range(1, 1001))
        kinds = [classify(first, second) for first, second in pairs]
        # Bounds of about four standard deviations around the configured shares.
        assert 60 <= kinds.count("failed") <= 140  # 10% of 1,000
        assert 55 <= kinds.count("transient") <= 130  # 10% of the ~900 that do not always fail
        assert 115 <= kinds.count("partial") + kinds.count("unrated") <= 215  # 20% of the ~810 left
        assert 12 <= kinds.count("unrated") <= 60  # a fifth of the partial ones
        failed_statuses = {first.status_code for (first, _), kind in zip(pairs, kinds) if kind == "failed"}
        assert failed_statuses == {403, 404, 500, 503}
        transient = [first for (first, _), kind in zip(pairs, kinds) if kind == "transient"]
        assert {response.status_code for response in transient} == {200, 429, 500, 502, 503, 504}
        assert all(
            response.headers["Retry-After"] in ("0", "1")
            for response in transient
            if response.status_code == 429
        )
        failed_requests = 2 * kinds.count("failed")
        assert server.stats()["esg"]["injected"] == failed_requests + len(transient)
        assert server.stats()["esg"]["limited"] == 0  # the 429s above were injected, not a limit's
        bad_bodies = [response for response in transient if response.status_code == 200]
        assert any(not _is_json(response.text) for response in bad_bodies)  # invalid JSON
        assert any(_is_json(response.text) for response in bad_bodies)  # valid JSON, not a rating

        # The AMS pages fail once too, and a client that retries them still gets every account.
        with authorized_session(server) as walker:
            assert active_accounts_of(walk_accounts(walker, server, limit=50)) == list(
                server.data.expected_active_accounts()
            )
        assert set(server.stats()["ams"]["by_status"]) - {"200"}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- limits --------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_exceeding_the_rate_limit_gets_429_with_retry_after():
    with sandbox_and_session(accounts=10, rate_limit=2) as (server, session):
        responses = [get_rating(session, server, "ACC-0000001") for _ in range(20)]
        limited = [response for response in responses if response.status_code == 429]
        assert limited and responses[0].status_code == 200
        for response in limited:
            assert response.headers["Retry-After"].isdigit()
            assert response.headers["RateLimit-Limit"] == "2"
            assert response.headers["RateLimit-Remaining"] == "0"
            assert int(response.headers["RateLimit-Reset"]) >= 1
        assert responses[0].headers["RateLimit-Limit"] == "2"
        stats = server.stats()["esg"]
        assert stats["by_status"]["429"] == stats["limited"] == len(limited) and stats["injected"] == 0


@pytest.mark.integration
def test_a_client_pacing_itself_below_the_rate_limit_gets_no_429():
    # 25 requests is more than the bucket holds (20), so they only pass because the bucket refills.
    with sandbox_and_session(accounts=10, rate_limit=20) as (server, session):
        statuses = []
        for _ in range(25):
            statuses.append(get_rating(session, server, "ACC-0000001").status_code)
            time.sleep(1 / 13)
        assert set(statuses) == {200}


@pytest.mark.integration
def test_requests_over_the_in_flight_limit_get_429():
    with SandboxServer(SandboxConfig(accounts=10, max_in_flight=2, latency_ms=300)) as server:
        session = per_thread_session(server)
        barrier = threading.Barrier(6)

        def request(_):
            session()  # the token first, so the six requests leave together
            barrier.wait()
            return get_rating(session(), server, "ACC-0000001").status_code

        statuses = parallel(request, range(6), workers=6)
        assert statuses.count(200) >= 1 and statuses.count(429) >= 1
        stats = server.stats()["esg"]
        assert stats["max_in_flight_seen"] >= 3
        assert stats["by_status"]["429"] == stats["limited"] == statuses.count(429)


@pytest.mark.integration
def test_a_client_that_waits_for_each_response_never_trips_the_in_flight_limit():
    with sandbox_and_session(accounts=10, max_in_flight=1) as (server, session):
        assert {get_rating(session, server, "ACC-0000002").status_code for _ in range(100)} == {200}
        assert server.stats()["esg"]["max_in_flight_seen"] == 1


@pytest.mark.integration
def test_job_environment_names_the_enforced_limits():
    with SandboxServer(SandboxConfig(accounts=10, rate_limit=50, max_in_flight=8)) as server:
        environment = server.job_environment()
        assert environment == {
            "ESG_AUTH_TOKEN_URL": f"{server.base_url}/oauth/token",
            "ESG_CLIENT_ID": "sandbox",
            "ESG_CLIENT_SECRET": "sandbox",
            "ESG_AMS_BASE_URL": f"{server.base_url}/ams",
            "ESG_API_BASE_URL": f"{server.base_url}/esg",
            "ESG_RATE_LIMIT_PER_SECOND": "50",
            "ESG_MAX_IN_FLIGHT": "8",
        }
    with SandboxServer(SandboxConfig(accounts=10)) as server:
        assert "ESG_RATE_LIMIT_PER_SECOND" not in server.job_environment()


# --- stats ---------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_stats_count_every_request_by_status():
    with sandbox_and_session(accounts=10) as (server, session):
        requests.post(server.token_url, data={"grant_type": "client_credentials"}, timeout=5)  # 401
        get_page(session, server, limit=5)
        get_page(session, server, limit=5000)
        etag = get_rating(session, server, "ACC-0000001").headers["ETag"]
        get_rating(session, server, "ACC-0000001", etag=etag)
        get_rating(session, server, "ACC-9999999")
        requests.get(rating_url(server, "ACC-0000001"), params={"as_of": "2026-11-21"}, timeout=5)  # no token

        expected = {
            "token": {"requests": 2, "by_status": {"200": 1, "401": 1}},
            "ams": {"requests": 2, "by_status": {"200": 1, "400": 1}},
            "esg": {
                "requests": 4,
                "by_status": {"200": 1, "304": 1, "401": 1, "404": 1},
                "max_in_flight_seen": 1,
                "in_flight": 0,
                "limited": 0,
                "injected": 0,
                "hostile_pending": 0,
            },
        }
        stats = server.stats()
        assert sum(stats["esg"].pop("per_second").values()) == 4  # by epoch second: when is up to the clock
        assert stats["esg"].pop("busy_seconds") >= 0
        assert stats == expected
        served = session.get(f"{server.base_url}/_sandbox/stats", timeout=5).json()
        served["esg"].pop("per_second")
        served["esg"].pop("busy_seconds")
        assert served == expected


@pytest.mark.integration
def test_busy_seconds_add_up_the_time_each_rating_request_was_served():
    with sandbox_and_session(accounts=10, latency_ms=50) as (server, session):
        for _ in range(4):
            assert get_rating(session, server, "ACC-0000001").status_code == 200
        # Summed over requests, so over a span of time it is the mean number of requests in flight.
        assert server.stats()["esg"]["busy_seconds"] >= 4 * 0.05


# --- command line --------------------------------------------------------------------------------------
@pytest.mark.integration
def test_cli_prints_the_job_environment_and_serves_until_terminated():
    command = [
        sys.executable,
        "-m",
        "esg_assets.sandbox.cli",
        "--port",
        "0",
        "--accounts",
        "20",
        "--seed",
        "5",
        "--rate-limit",
        "50",
        "--max-in-flight",
        "4",
    ]
    environment = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment, cwd=REPO_ROOT
    )
    # A reader thread, because a blocking readline would hang the test if the sandbox never got ready.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        exports, ready = {}, None
        while ready is None:
            line = lines.get(timeout=30)
            assert line.endswith("\n"), line
            if line.startswith("# sandbox ready on "):
                ready = line.removeprefix("# sandbox ready on ").strip()
            else:
                name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
                exports[name] = value
        assert ready and re.fullmatch(r"http://127\.0\.0\.1:\d+", ready)
        assert exports == {
            "ESG_AUTH_TOKEN_URL": f"{ready}/oauth/token",
            "ESG_CLIENT_ID": "sandbox",
            "ESG_CLIENT_SECRET": "sandbox",
            "ESG_AMS_BASE_URL": f"{ready}/ams",
            "ESG_API_BASE_URL": f"{ready}/esg",
            "ESG_RATE_LIMIT_PER_SECOND": "50",
            "ESG_MAX_IN_FLIGHT": "4",
        }
        token = requests.post(
            exports["ESG_AUTH_TOKEN_URL"],
            timeout=5,
            data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
        ).json()
        rating = requests.get(
            f"{exports['ESG_API_BASE_URL']}/v1/accounts/ACC-0000001/esg-rating",
            params={"as_of": "2026-11-21"},
            timeout=5,
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert rating.status_code == 200
        assert rating.json() == SandboxData(SandboxConfig(accounts=20, seed=5)).rating("ACC-0000001", AS_OF)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()
            reader.join(timeout=5)
            process.stdout.close()


@pytest.mark.unit
@pytest.mark.parametrize(
    "arguments",
    [
        ["--failure-rate", "1.5"],
        ["--partial-rate", "-0.1"],
        ["--latency-ms", "-5"],
        ["--rate-limit", "0"],
        ["--hostile-rate", "2"],
        ["--accounts", "ten"],
    ],
)
def test_cli_rejects_invalid_settings(arguments):
    from esg_assets.sandbox.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2


@pytest.mark.integration
def test_cli_without_the_sandbox_extra_says_how_to_install_it():
    # A production install (pip install esg-assets, no [sandbox]) has no aiohttp: stand that in with a blocked
    # import.
    script = (
        "import sys; sys.modules['aiohttp'] = None; "
        "from esg_assets.sandbox.cli import main; sys.exit(main([]))"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "pip install 'esg-assets[sandbox]'" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    "setting",
    [
        {"failure_rate": 1.5},
        {"daily_change_rate": -0.1},
        {"rate_limit": 0},
        {"max_in_flight": 0},
        {"latency_ms": -1},
        {"token_ttl": 0},
    ],
)
def test_config_rejects_impossible_settings(setting):
    with pytest.raises(ValueError):
        SandboxConfig(**setting)


@pytest.mark.integration
def test_the_job_and_its_commands_load_without_the_sandbox_extra():
    # The production install: no aiohttp. The code location and esg-report must not need it (nor the sandbox).
    script = (
        "import sys; sys.modules['aiohttp'] = None; "
        "import esg_assets.definitions, esg_assets.cli.report; "
        "sys.exit(1 if any(name.startswith('esg_assets.sandbox') for name in sys.modules) else 0)"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr


# --- hostile input (--hostile-rate) ---------------------------------------------------------------------


def hostile_sandbox(**config):
    return sandbox_and_session(**{"accounts": 300, "seed": 13, "hostile_rate": 0.1, **config})


@pytest.mark.unit
def test_hostile_accounts_are_deterministic_by_seed_and_near_the_rate():
    def listing(seed: int) -> list[tuple]:
        data = SandboxData(SandboxConfig(accounts=5000, seed=seed, hostile_rate=0.1))
        return [
            (n, data.hostile_kind(n), data._account_row(n, "active")["account_name"]) for n in range(1, 5001)
        ]

    first, again, other = listing(3), listing(3), listing(4)
    assert first == again and first != other
    share = sum(kind is not None for _, kind, _ in first) / 5000
    assert 0.08 <= share <= 0.12


@pytest.mark.unit
def test_accounts_11_to_16_carry_one_hostile_kind_each_whatever_the_rate():
    data = SandboxData(SandboxConfig(accounts=300, seed=13, hostile_rate=0.0001))
    assert tuple(data.hostile_kind(n) for n in range(11, 17)) == HOSTILE_KINDS


@pytest.mark.unit
def test_without_hostile_rate_no_account_is_hostile_and_no_fault_is_planned():
    data = SandboxData(SandboxConfig(accounts=300, seed=13))
    assert {data.hostile_kind(n) for n in range(1, 301)} == {None}
    assert data.hostile_fault_accounts() == {}


@pytest.mark.integration
def test_hostile_listing_carries_escaped_lone_surrogates_control_characters_long_names_and_numeric_ids():
    with hostile_sandbox(transient_error_rate=0.0) as (server, session):
        first = get_page(session, server, limit=1000)
        cursor = json.loads(first.content, parse_int=str)["next_cursor"]
        retried = get_page(session, server, limit=1000, cursor=cursor)
        text = b"".join(
            [first.content]
            + [get_page(session, server, limit=1000).content]  # the complete walk's first page
        )
    assert retried.status_code == 400 and retried.json() == {"error": "invalid_cursor"}
    assert b"\\udc80" in text or b"\\udfff" in text or b"\\ud800" in text  # a lone surrogate, as an escape
    assert b"\\u0000" in text or b"\\u0001" in text or b"\\u0007" in text
    assert re.search(rb'"account_id": 167{4998}, ', text)  # a 5,000-digit number where the id should be
    assert re.search(rb'"account_id": 15, ', text)
    body = json.loads(text[: len(first.content)].decode("utf-8", "surrogatepass"), parse_int=str)
    assert len(body["data"]) == 51 and body["data"][-1]["account_id"] == "ACC-GHOST"  # the aborted walk
    assert body["has_more"] is True


@pytest.mark.integration
def test_the_cursor_expires_once_per_run_and_the_restarted_walk_has_no_ghost():
    with hostile_sandbox() as (server, session):
        get_page(session, server, limit=1000)
        # The first cursor presented expires, whichever it is; the walk then runs through.
        assert get_page(session, server, limit=1000, cursor="anything").status_code == 400
        rows = walk_accounts(session, server, limit=100)
    assert "ACC-GHOST" not in {row.get("account_id") for row in rows}


@pytest.mark.integration
def test_an_oversized_rating_comes_once_for_its_account_then_the_real_one():
    with hostile_sandbox() as (server, session):
        (account_id,) = [
            a for a, fault in server.data.hostile_fault_accounts().items() if fault == "oversized"
        ]
        first = get_rating(session, server, account_id)
        second = get_rating(session, server, account_id)
        real = server.data.encoded_rating(account_id, AS_OF)
    assert first.status_code == 200 and len(first.content) > 1024 * 1024
    assert first.json()["scores"]["overall"] == 0  # a decoy: a client that took it writes a wrong row
    assert second.content == real.body and second.headers["ETag"] == real.etag


@pytest.mark.integration
def test_a_trickled_rating_sends_a_byte_at_a_time_then_the_real_one_comes():
    with hostile_sandbox() as (server, session):
        (account_id,) = [
            a for a, fault in server.data.hostile_fault_accounts().items() if fault == "trickled"
        ]
        started = time.monotonic()
        with session.get(rating_url(server, account_id), params={"as_of": AS_OF.isoformat()}, stream=True,
                         timeout=5) as trickled:  # fmt: skip
            first_bytes = [trickled.raw.read(1) for _ in range(3)]
            took = time.monotonic() - started
            declared = int(trickled.headers["Content-Length"])
        second = get_rating(session, server, account_id)
    assert first_bytes == [b"{", b'"', b"a"]
    assert 1.0 <= took < 5  # each byte within any read timeout ...
    assert declared * 0.5 > 60  # ... the whole beyond any total one
    assert second.status_code == 200 and second.content == server.data.encoded_rating(account_id, AS_OF).body
