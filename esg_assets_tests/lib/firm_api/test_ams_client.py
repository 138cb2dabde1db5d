"""AmsClient against a scripted AMS on loopback (pytest-httpserver): the walk, row validation, errors and
retries."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver.hooks import Delay
from werkzeug import Response

from esg_assets.lib.firm_api.ams import AccountRow, AmsClient
from esg_assets.lib.firm_api.errors import AmsCursorExpiredError, AmsError
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.retrying import MIN_RETRY_DELAY
from esg_assets_tests.support.loopback_http import (
    HeaderTricklingServer,
    json_response,
    raw_target,
    token_endpoint,
    trickled_response,
)
from esg_assets_tests.support.scripted_server import Reply, json_reply


def row(
    account_id: object = "ACC-0000001",
    name: object = "Harbor Pension Trust",
    status: object = "active",
    updated_at: object = "2026-11-21T18:03:11Z",
) -> dict:
    return {"account_id": account_id, "account_name": name, "status": status, "updated_at": updated_at}


ACCOUNTS = "/v1/accounts"


def page_body(rows: list, next_cursor: str | None = None) -> dict:
    return {"data": rows, "next_cursor": next_cursor, "has_more": next_cursor is not None}


def page(rows: list, next_cursor: str | None = None) -> Response:
    return json_response(page_body(rows, next_cursor))


@pytest.fixture
def server(httpserver):
    """The AMS on pytest-httpserver, its token endpoint at /token."""
    httpserver.expect_request("/token").respond_with_handler(token_endpoint())
    return httpserver


def script(server, *responses: Response) -> None:
    """Each of ``responses`` answers one request for a page, in order."""
    for response in responses:
        server.expect_oneshot_request(ACCOUNTS).respond_with_response(response)


@pytest.fixture
def walk(server):
    pages = walker(server)
    yield pages
    pages.close()


def walker(server):
    """``walk(**options)``: the pages of a client on ``server``; ``walk.delays`` holds what it slept."""
    session = build_session(pool_size=2, ca_bundle=None)
    tokens = TokenProvider(session, server.url + "/token", "job", "secret", timeout=2.0)
    delays: list[float] = []

    def client(**options) -> AmsClient:
        options = {"timeout": 2.0, "backoff_base": 0.01, "sleep": delays.append, **options}
        return AmsClient(session, server.url, tokens, **options)

    def pages(**options):
        return list(client(**options).iter_pages())

    pages.client = client
    pages.delays = delays
    pages.close = session.close
    return pages


def account_requests(server):
    return server.requests_to(ACCOUNTS)


@pytest.mark.integration
def test_the_walk_follows_cursors_to_the_end_including_empty_pages(server, walk):
    script(
        server,
        page([row("ACC-1"), row("ACC-2")], next_cursor="c-1"),
        page([], next_cursor="c-2"),
        page([row("ACC-3")]),
    )

    pages = walk(page_size=2)

    assert [p.number for p in pages] == [1, 2, 3]
    assert [[r.account_id for r in p.rows] for p in pages] == [["ACC-1", "ACC-2"], [], ["ACC-3"]]
    queries = [request.args.to_dict() for request in account_requests(server)]
    assert queries == [
        {"status": "active", "limit": "2"},
        {"status": "active", "limit": "2", "cursor": "c-1"},
        {"status": "active", "limit": "2", "cursor": "c-2"},
    ]
    assert all(r.headers["authorization"] == "Bearer tok-1" for r in account_requests(server))


@pytest.mark.integration
def test_a_cursor_is_sent_url_encoded_as_it_came(server, walk):
    script(server, page([], next_cursor="a+b/c=="), page([]))

    walk()

    assert raw_target(account_requests(server)[1]).endswith("&cursor=a%2Bb%2Fc%3D%3D")


@pytest.mark.integration
def test_rows_of_every_status_and_duplicates_are_kept_for_the_later_de_duplication(server, walk):
    script(
        server,
        page([row("ACC-1", updated_at="2026-11-20T10:00:00Z"), row("ACC-2", status="suspended")], "c-1"),
        page([row("ACC-1", status="closed", updated_at="2026-11-21T10:00:00+02:00")]),
    )

    rows = [r for p in walk() for r in p.rows]

    assert [(r.account_id, r.status) for r in rows] == [
        ("ACC-1", "active"),
        ("ACC-2", "suspended"),
        ("ACC-1", "closed"),
    ]
    assert rows[0].updated_at == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert rows[2].updated_at == datetime(2026, 11, 21, 8, tzinfo=UTC)  # normalised to UTC so rows compare


@pytest.mark.integration
def test_malformed_ids_are_rejected_with_their_page_and_position(server, walk):
    good = ["ACC-0000009", "a.b_c-D", "x" * 64]
    script(
        server,
        page([row("ACC-1")], "c-1"),
        page(
            [
                row(good[0]),
                {"account_name": "No Id Ltd", "status": "active"},
                row(None),
                row(12345),
                row(""),
                row("x" * 65),
                row("Harbor Pension Trust"),
                row("ACC-1\n"),
                row("ÄCC-1"),
                row(["ACC-1"]),
                "not an object",
                row(good[1]),
                row(good[2]),
            ]
        ),
    )

    pages = walk()

    assert pages[0].rejected == []
    second = pages[1]
    assert [r.account_id for r in second.rows] == good
    assert [(r.page, r.position) for r in second.rejected] == [(2, n) for n in range(1, 11)]
    reasons = [r.reason for r in second.rejected]
    assert reasons[:5] == [
        "account_id missing",
        "account_id missing",
        "account_id is not a string (JSON number)",
        "account_id is empty",
        "account_id is 65 characters long (at most 64)",
    ]
    bad_characters = "account_id has characters other than ASCII letters, digits, '-', '_' and '.'"
    assert reasons[5:8] == [bad_characters] * 3
    assert reasons[8:] == ["account_id is not a string (JSON array)", "the row is not a JSON object"]
    described = " | ".join(r.describe() for r in second.rejected)
    assert "AMS page 2, row 6: account_id has characters" in described
    assert "Harbor" not in described and "No Id" not in described  # names (even in the id field) stay out


@pytest.mark.integration
def test_a_missing_name_or_unreadable_fields_keep_the_row_with_a_warning(server, walk):
    script(
        server,
        page(
            [
                row("ACC-1", name=None),
                row("ACC-2", name=42),
                row("ACC-3", updated_at="yesterday"),
                row("ACC-4", updated_at=None),
                row("ACC-5", status=None),
                row("ACC-6", updated_at="2026-11-21T18:03:11"),
            ]
        ),
    )

    (only,) = walk()

    assert [r.account_name for r in only.rows[:2]] == ["", ""]
    assert [r.updated_at for r in only.rows[2:4]] == [None, None]
    assert only.rows[4].status == ""
    assert only.rows[5].updated_at == datetime(2026, 11, 21, 18, 3, 11, tzinfo=UTC)
    assert only.rejected == []
    assert [(w.account_id, w.reason.split(" ")[0]) for w in only.warnings] == [
        ("ACC-1", "account_name"),
        ("ACC-2", "account_name"),
        ("ACC-3", "updated_at"),
        ("ACC-4", "updated_at"),
        ("ACC-5", "status"),
    ]
    assert only.warnings[0].describe() == (
        "AMS page 1, row 0 (account ACC-1): account_name missing or not a string; kept as an empty name"
    )


@pytest.mark.unit
def test_an_account_row_repr_leaves_the_name_out():
    account = AccountRow("ACC-1", "Harbor Pension Trust", "active", None)
    assert "Harbor" not in repr(account) and "ACC-1" in repr(account)


@pytest.mark.integration
def test_an_expired_cursor_says_the_walk_must_restart(server, walk):
    script(server, page([row("ACC-1")], "c-1"), json_response({"error": "invalid_cursor"}, status=400))
    pages = walk.client().iter_pages()

    assert next(pages).rows[0].account_id == "ACC-1"
    with pytest.raises(AmsCursorExpiredError, match="page 2: the cursor expired .* from the first page"):
        next(pages)
    assert len(account_requests(server)) == 2  # not retried


@pytest.mark.integration
@pytest.mark.parametrize(
    "first_replies",
    [
        [json_response({"error": "rate_limited"}, status=429, Retry_After="0")],
        [
            Response(status=500),
            Response(status=502),
            Response(status=503, headers={"Retry-After": "1"}),
            Response(status=504),
        ],
        [Response("<html>proxy error</html>")],
    ],
)
def test_transient_errors_are_retried_on_the_same_cursor(server, walk, first_replies):
    script(server, page([], "c-1"), *first_replies, page([row("ACC-1")]))

    pages = walk(max_attempts=5)

    assert pages[1].rows[0].account_id == "ACC-1"
    cursors = [request.args.get("cursor") for request in account_requests(server)]
    assert cursors == [None] + ["c-1"] * (len(first_replies) + 1)
    assert len(walk.delays) == len(first_replies) and min(walk.delays) >= MIN_RETRY_DELAY


@pytest.mark.integration
def test_a_dropped_connection_is_retried_on_the_same_cursor(dropping_server):
    # The hand-written server: a connection reset mid-request is what pytest-httpserver cannot script.
    dropping_server.script(
        json_reply(page_body([], "c-1")), Reply(drop=True), json_reply(page_body([row("ACC-1")]))
    )
    walk = walker(dropping_server)
    try:
        pages = walk(max_attempts=5)
    finally:
        walk.close()

    assert pages[1].rows[0].account_id == "ACC-1"
    cursors = [request.query.get("cursor") for request in dropping_server.requests_to(ACCOUNTS)]
    assert cursors == [None, "c-1", "c-1"]
    assert len(walk.delays) == 1 and min(walk.delays) >= MIN_RETRY_DELAY


@pytest.mark.integration
def test_a_page_slower_than_the_timeout_is_retried(server, walk):
    server.expect_oneshot_request(ACCOUNTS).with_post_hook(Delay(1.0)).respond_with_json(page_body([]))
    script(server, page([row()]))

    (only,) = walk(timeout=0.2)

    assert only.rows[0].account_id == "ACC-0000001"


@pytest.mark.integration
def test_retries_end_with_an_error_naming_the_page(server, walk):
    script(server, page([], "c-1"), *[Response(status=503) for _ in range(3)])

    with pytest.raises(AmsError, match=r"AMS page 2: HTTP 503 after 3 attempt\(s\)"):
        walk(max_attempts=3)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "the page is not valid JSON"),
        ([], "the body is not a JSON object"),
        ({"next_cursor": None, "has_more": False}, "data is missing or not a list"),
        ({"data": {"ACC-1": {}}, "next_cursor": None, "has_more": False}, "data is missing or not a list"),
        ({"data": [], "next_cursor": None}, "has_more is missing or not true/false"),
        ({"data": [], "next_cursor": None, "has_more": "false"}, "has_more is missing or not true/false"),
        ({"data": [], "next_cursor": None, "has_more": True}, "has_more is true but next_cursor is not"),
        ({"data": [], "next_cursor": "", "has_more": True}, "has_more is true but next_cursor is not"),
    ],
)
def test_a_page_not_in_the_documented_shape_is_an_error_naming_what_is_wrong(server, walk, body, problem):
    reply = Response(body) if isinstance(body, str) else json_response(body)
    script(server, reply, reply)

    with pytest.raises(AmsError) as raised:
        walk(max_attempts=2)

    assert problem in str(raised.value) and "AMS page 1" in str(raised.value)
    assert len(account_requests(server)) == 2


@pytest.mark.integration
def test_a_repeated_cursor_stops_the_walk_instead_of_looping(server, walk):
    script(server, page([], "c-1"), page([], "c-2"), page([], "c-1"))

    with pytest.raises(AmsError, match="next_cursor repeats an earlier cursor"):
        walk()


@pytest.mark.integration
def test_a_401_refreshes_the_token_once(server, walk):
    expired = Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    script(server, expired, page([row()]))

    (only,) = walk()

    assert only.rows[0].account_id == "ACC-0000001"
    assert [r.headers["authorization"] for r in account_requests(server)] == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.integration
def test_a_second_401_is_an_error(server, walk):
    script(server, Response(status=401), Response(status=401), page([row()]))

    with pytest.raises(AmsError, match="AMS page 1: HTTP 401 after token refresh"):
        walk()
    assert len(account_requests(server)) == 2


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "message"), [(403, "HTTP 403 not_entitled"), (404, "HTTP 404"), (400, "HTTP 400")]
)
def test_other_client_errors_stop_the_walk_without_retry(server, walk, status, message):
    body = {"error": "not_entitled"} if status == 403 else {}
    script(server, json_response(body, status=status), page([row()]))

    with pytest.raises(AmsError, match=f"AMS page 1: {message}$"):
        walk()
    assert len(account_requests(server)) == 1


@pytest.mark.integration
@pytest.mark.parametrize("page_size", [0, 1001, -1, True, 10.0, "100"])
def test_page_size_outside_1_to_1000_is_refused(walk, page_size):
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 1000"):
        walk.client(page_size=page_size)


@pytest.mark.integration
@pytest.mark.parametrize("page_size", [1, 1000])
def test_page_size_limits_are_accepted_and_sent(server, walk, page_size):
    script(server, page([]))

    walk(page_size=page_size)

    assert account_requests(server)[0].args["limit"] == str(page_size)


# --- hostile input: one bad row costs that row at most (docs/api-contract.md) ------------------------


def raw_page(text: str) -> Response:
    """A page written as JSON text by hand: escapes and numbers json.dumps would not write."""
    return Response(text.encode("utf-8", "surrogatepass"), content_type="application/json")


@pytest.mark.integration
def test_names_that_are_not_valid_text_keep_their_row_repaired_with_the_id_and_reason_logged(server, walk):
    long_name = "Ω" * 700
    script(
        server,
        raw_page(
            '{"data": ['
            '{"account_id": "ACC-1", "account_name": "Lone \\udc80 Trust", "status": "active"},'
            '{"account_id": "ACC-2", "account_name": "Nul\\u0000Bell\\u0007Del\\u007f", "status": "active"},'
            f'{{"account_id": "ACC-3", "account_name": "{long_name}", "status": "active"}},'
            '{"account_id": "ACC-4", "account_name": "\\ud83c\\udf31 Pair \\t\\n\\r ok", "status": "active"},'
            '{"account_id": "ACC-5", "account_name": "=cmd\\ud800", "status": "active"}'
            '], "next_cursor": null, "has_more": false}'
        ),
    )

    (only,) = walk()

    names = [r.account_name for r in only.rows]
    assert names == [
        "Lone \ufffd Trust",
        "Nul\ufffdBell\ufffdDel\ufffd",
        "Ω" * 500,
        "🌱 Pair \t\n\r ok",  # a surrogate pair is one valid character; tab, LF, CR are allowed
        "=cmd\ufffd",  # the formula rule comes later, when the row is written
    ]
    for name in names:
        name.encode("utf-8")  # what reaches DuckDB and the file is valid UTF-8
    assert only.rejected == []
    assert [w.account_id for w in only.warnings if "account_name" in w.reason] == [
        "ACC-1",
        "ACC-2",
        "ACC-3",
        "ACC-5",
    ]
    logged = [w.describe() for w in only.warnings if "account_name" in w.reason]
    assert logged[0].startswith(
        "AMS page 1, row 0 (account ACC-1): account_name breaks the text rules (1 lone"
    )
    assert "3 control character(s)" in logged[1]
    assert "700 characters (at most 500)" in logged[2] and "cut to its first 500 characters" in logged[2]
    assert not any(part in " ".join(logged) for part in ("Lone", "Nul", "ΩΩ", "cmd"))  # never the name


@pytest.mark.integration
def test_bytes_that_are_not_utf_8_in_a_name_cost_only_those_characters(server, walk):
    body = (
        b'{"data": [{"account_id": "ACC-1", "account_name": "Caf\xe9 \xff Fund", "status": "active"},'
        b' {"account_id": "ACC-2", "account_name": "Fine", "status": "active"}],'
        b' "next_cursor": null, "has_more": false}'
    )
    script(server, Response(body, content_type="application/json"))

    (only,) = walk()

    assert [r.account_name for r in only.rows] == ["Caf\ufffd \ufffd Fund", "Fine"]
    assert [w.account_id for w in only.warnings if "account_name" in w.reason] == ["ACC-1"]


@pytest.mark.integration
def test_a_status_that_is_not_valid_text_makes_the_row_not_active(server, walk):
    bad_status = '{"account_id": "ACC-1", "account_name": "A", "status": "act\\udc80ive"}'
    script(server, raw_page('{"data": [' + bad_status + '], "next_cursor": null, "has_more": false}'))

    (only,) = walk()

    assert only.rows[0].status == ""
    assert only.warnings[0].reason == "status is not valid text; the row counts as not active"


@pytest.mark.integration
def test_numeric_ids_of_any_length_reject_their_row_and_the_rest_of_the_page_is_used(server, walk):
    huge = "9" * 5000  # json.loads would raise on it as an int: Python's int max-str-digits limit
    script(
        server,
        raw_page(
            '{"data": ['
            '{"account_id": "ACC-1", "account_name": "A", "status": "active"},'
            f'{{"account_id": {huge}, "account_name": "Huge Id Fund", "status": "active"}},'
            '{"account_id": 1234567, "account_name": "B", "status": "active"},'
            '{"account_id": -1.5e400, "account_name": "C", "status": "active"},'
            '{"account_id": "ACC-2", "account_name": "D", "status": "active", "extra": ' + huge + "}"
            '], "next_cursor": null, "has_more": false}'
        ),
    )

    (only,) = walk()

    assert [r.account_id for r in only.rows] == ["ACC-1", "ACC-2"]
    assert [(r.page, r.position, r.reason) for r in only.rejected] == [
        (1, n, "account_id is not a string (JSON number)") for n in (1, 2, 3)
    ]
    assert "Huge" not in only.rejected[0].describe() and "999" not in only.rejected[0].describe()


def expired_cursor() -> Response:
    return json_response({"error": "invalid_cursor"}, status=400)


@pytest.mark.integration
def test_an_expired_cursor_restarts_the_walk_from_the_first_page(server, walk):
    script(
        server,
        page([row("ACC-1"), row("ACC-GHOST")], "c-1"),  # the aborted walk
        expired_cursor(),
        page([row("ACC-1")], "c-2"),  # the complete walk: the list changed meanwhile
        page([row("ACC-2")]),
    )

    items = list(walk.client().walk())

    restart = items[1]
    assert restart.walk == 2 and "page 2: the cursor expired" in restart.reason
    assert [[r.account_id for r in p.rows] for p in items[2:]] == [["ACC-1"], ["ACC-2"]]
    assert [p.number for p in items[2:]] == [1, 2]  # numbered from 1 again
    queries = [request.args.get("cursor") for request in account_requests(server)]
    assert queries == [None, "c-1", None, "c-2"]


@pytest.mark.integration
def test_the_walk_gives_up_when_the_cursor_expires_again_after_three_restarts(server, walk):
    for _ in range(4):
        script(server, page([row("ACC-1")], "c-1"), expired_cursor())

    walked = walk.client().walk()
    restarts = []
    with pytest.raises(AmsCursorExpiredError, match="page 2: the cursor expired .*gave up after 3 restarts"):
        for item in walked:
            if not hasattr(item, "rows"):
                restarts.append(item.walk)

    assert restarts == [2, 3, 4]
    assert len(account_requests(server)) == 8  # four walks of two requests, then no fifth


@pytest.mark.integration
def test_a_page_over_16_mib_is_a_server_fault_and_retried(server, walk):
    padding = "x" * (16 * 1024 * 1024)
    script(server, json_response({**page_body([row("ACC-9")]), "padding": padding}), page([row("ACC-1")]))

    (only,) = walk()

    assert [r.account_id for r in only.rows] == ["ACC-1"]
    assert len(walk.delays) == 1  # one retry, after a backoff like a 5xx


@pytest.mark.integration
def test_pages_that_stay_over_16_mib_stop_the_walk_naming_the_fault(server, walk):
    padding = "x" * (16 * 1024 * 1024)
    for _ in range(2):
        script(server, json_response({**page_body([row("ACC-9")]), "padding": padding}))

    with pytest.raises(AmsError, match="AMS page 1: response body over 16 MiB after 2 attempt"):
        walk(max_attempts=2)


@pytest.mark.integration
def test_a_trickled_page_frees_the_walk_at_the_timeout_not_at_its_last_byte(server, walk):
    body = json.dumps(page_body([row("ACC-9")])).encode()
    script(server, trickled_response(body, interval=0.05), page([row("ACC-1")]))

    started = time.monotonic()
    (only,) = walk(timeout=0.5)
    elapsed = time.monotonic() - started

    assert [r.account_id for r in only.rows] == ["ACC-1"]
    # Each byte came well within the 0.5 s read timeout; the whole page would have taken over 4 s.
    assert len(body) * 0.05 > 4
    assert elapsed < 0.5 + 0.5


@pytest.mark.integration
def test_trickled_headers_free_the_walk_at_the_timeout(server):
    session = build_session(pool_size=2, ca_bundle=None)
    tokens = TokenProvider(session, server.url + "/token", "job", "secret", timeout=2.0)
    with HeaderTricklingServer(interval=0.05) as trickling:
        client = AmsClient(session, trickling.url, tokens, timeout=0.5, max_attempts=1)
        started = time.monotonic()
        with pytest.raises(AmsError, match="AMS page 1: timeout after 1 attempt"):
            list(client.iter_pages())
        elapsed = time.monotonic() - started
    session.close()
    assert elapsed < 0.5 + 0.5  # the headers alone would take over 12 s, each byte within the read timeout
