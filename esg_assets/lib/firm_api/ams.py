"""Walks the Account Management System's account list page by page (api-contract section 2)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import requests

from esg_assets.core.account_ids import ACCOUNT_ID, MAX_ACCOUNT_ID_LENGTH
from esg_assets.core.ratings.account_names import repair_account_name
from esg_assets.core.transport_security import tls_problem
from esg_assets.lib.firm_api.bounded_body import MIB, ReadResponse, read_bounded, request_deadline
from esg_assets.lib.firm_api.errors import AmsCursorExpiredError, AmsError, ResponseTooLargeError
from esg_assets.lib.firm_api.oauth import TokenProvider, oauth_error_code, send_authorized
from esg_assets.lib.firm_api.retrying import (
    TRANSIENT_STATUSES,
    asks_too_long,
    call_with_retries,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
# A full page of 1,000 rows with 500-character names is at most about 6 MiB, every character a JSON escape
# included; more is a server fault.
MAX_PAGE_BODY = 16 * MIB
# An expired cursor restarts the walk from the first page; after this many restarts the run fails.
MAX_WALK_RESTARTS = 3


@dataclass(frozen=True)
class AccountRow:
    """One account as AMS listed it, whatever its status: de-duplication and the status filter come later."""

    account_id: str
    account_name: str = field(repr=False)  # free text typed by people: kept out of reprs that may be logged
    status: str
    updated_at: datetime | None  # UTC; None when AMS sent none or an unreadable one (ranks lowest)


@dataclass(frozen=True)
class RejectedRow:
    """A problem with one row of a page. Never carries the account name, nor a malformed id (which could
    be any text); ``account_id`` is set only when the id itself is valid."""

    page: int
    position: int  # 0-based index of the row in the page's "data" list
    reason: str
    account_id: str | None = None

    def describe(self) -> str:
        """One log line for the caller."""
        where = f"AMS page {self.page}, row {self.position}"
        if self.account_id is not None:
            where += f" (account {self.account_id})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class AmsPage:
    """The usable rows of one page, the rows rejected from it, and warnings about rows kept with a repair."""

    number: int  # 1-based, in the order of the walk
    rows: list[AccountRow]
    rejected: list[RejectedRow]
    warnings: list[RejectedRow] = field(default_factory=list)


@dataclass(frozen=True)
class WalkRestart:
    """The walk starts again from the first page: every page taken before this one must be dropped."""

    walk: int  # the number of the walk that begins: 2 for the first restart
    reason: str


@dataclass(frozen=True)
class _PageAttempt:
    """The result of one GET of a page."""

    body: dict | None = None
    problem: str | None = None
    transient: bool = False
    retry_after: float | None = None
    cursor_expired: bool = False


class AmsClient:
    """Lists every account AMS returns for ``status=active``, following cursors to the end."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        tokens: TokenProvider,
        timeout: float,
        page_size: int = 1000,
        max_attempts: int = 5,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        page_size_is_int = isinstance(page_size, int) and not isinstance(page_size, bool)
        if not page_size_is_int or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {page_size!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("AMS base URL must start with http:// or https://")
        self._session = session
        self._url = base_url.rstrip("/") + "/v1/accounts"
        self._tokens = tokens
        self._timeout = timeout
        self._page_size = page_size
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep

    def walk(self) -> Iterator[AmsPage | WalkRestart]:
        """The pages of one complete walk; when a cursor expires mid-walk, a ``WalkRestart`` and the pages
        of a new walk from the first page, at most ``MAX_WALK_RESTARTS`` times.

        The caller drops what it took from the pages before a ``WalkRestart``: the day's snapshot is what
        one complete walk returned. Raises ``AmsCursorExpiredError`` when the cursor expires once more
        after the last restart, ``AmsError`` as ``iter_pages``.
        """
        walk = 1
        while True:
            try:
                yield from self.iter_pages()
                return
            except AmsCursorExpiredError as expired:
                if walk > MAX_WALK_RESTARTS:
                    raise AmsCursorExpiredError(
                        f"{expired}; gave up after {MAX_WALK_RESTARTS} restarts of the walk"
                    ) from expired
                walk += 1
                yield WalkRestart(walk, str(expired))

    def iter_pages(self) -> Iterator[AmsPage]:
        """Every page from the first until ``has_more`` is false.

        Raises ``AmsCursorExpiredError`` when AMS no longer knows a cursor (restart the walk) and
        ``AmsError`` for anything else that stops the walk: retries spent, a refused request, a page
        that is not the documented shape.
        """
        cursor: str | None = None
        seen_cursors: set[str] = set()
        number = 0
        while True:
            number += 1
            body = self._fetch_page(number, cursor)
            yield _parse_page(number, body["data"])
            if body["has_more"] is False:
                return
            cursor = body["next_cursor"]
            if cursor in seen_cursors:
                # A server bug would otherwise make the walk loop forever over the same pages.
                raise AmsError(
                    f"AMS page {number}: next_cursor repeats an earlier cursor; the walk would not end"
                )
            seen_cursors.add(cursor)

    def _fetch_page(self, number: int, cursor: str | None) -> dict:
        params: dict[str, str | int] = {"status": "active", "limit": self._page_size}
        if cursor is not None:
            params["cursor"] = cursor

        def attempt() -> _PageAttempt:
            return self._attempt(params)

        def on_retry(outcome: _PageAttempt, delay: float) -> None:
            logger.info("AMS page %d: %s; retrying in %.1f s", number, outcome.problem, delay)

        outcome, attempts = call_with_retries(
            attempt,
            max_attempts=self._max_attempts,
            backoff_base=self._backoff_base,
            backoff_max=self._backoff_max,
            sleep=self._sleep,
            on_retry=on_retry,
        )
        if outcome.body is not None:
            return outcome.body
        if outcome.cursor_expired:
            raise AmsCursorExpiredError(
                f"AMS page {number}: the cursor expired or is unknown (400 invalid_cursor); "
                "the walk must restart from the first page"
            )
        if outcome.transient and asks_too_long(outcome, self._backoff_max):
            raise AmsError(
                f"AMS page {number}: {outcome.problem} with Retry-After {outcome.retry_after:.0f} s, "
                f"longer than the {self._backoff_max:.0f} s we wait"
            )
        if outcome.transient:
            raise AmsError(f"AMS page {number}: {outcome.problem} after {attempts} attempt(s)")
        raise AmsError(f"AMS page {number}: {outcome.problem}")

    def _attempt(self, params: dict[str, str | int]) -> _PageAttempt:
        def send(bearer: Callable[[], str]) -> ReadResponse:
            # The timeout covers the whole response, not each read: the body is read under a deadline.
            deadline = time.monotonic() + self._timeout
            headers = {"Authorization": f"Bearer {bearer()}", "Accept": "application/json"}
            with request_deadline(deadline):
                response = self._session.get(
                    self._url, params=params, headers=headers, timeout=self._timeout, stream=True
                )
            return read_bounded(response.raw, limit=MAX_PAGE_BODY, deadline=deadline, timeout=self._timeout)

        try:
            response = send_authorized(self._tokens, send)
        except ResponseTooLargeError as error:  # a server fault: retried like a 5xx
            return _PageAttempt(problem=str(error), transient=True)
        except requests.Timeout:
            return _PageAttempt(problem="timeout", transient=True)
        except requests.exceptions.SSLError as exc:  # an untrusted or expired certificate: not worth a retry
            return _PageAttempt(problem=tls_problem(exc))
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return _PageAttempt(problem="connection error", transient=True)
        except requests.RequestException as exc:
            return _PageAttempt(problem=f"request failed ({type(exc).__name__})")

        status = response.status_code
        if status == 200:
            return _parse_body(response.content)
        if status in TRANSIENT_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            return _PageAttempt(problem=f"HTTP {status}", transient=True, retry_after=retry_after)
        if status == 401:
            return _PageAttempt(problem="HTTP 401 after token refresh")
        code = oauth_error_code(response)  # AMS errors have the same {"error": "..."} body
        if status == 400 and code == "invalid_cursor":
            return _PageAttempt(problem="HTTP 400 invalid_cursor", cursor_expired=True)
        return _PageAttempt(problem=f"HTTP {status} {code}" if code else f"HTTP {status}")


def _parse_body(content: bytes) -> _PageAttempt:
    """The page body if it has the documented shape; otherwise what is wrong, as a transient problem.

    A garbled page is more likely a fault on the way than a lasting one, and re-reading a page is
    harmless, so it gets the same retries as a 5xx before the walk gives up.

    One bad row must not cost the page: bytes that are not UTF-8 are kept as lone surrogates (which the
    name rule then replaces), and numbers are read as decimals, which have no digit limit (an int of more
    than 4,300 digits would raise; a number where the id should be is that row's problem alone).
    """
    try:
        text = content.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
        body = json.loads(text, parse_int=Decimal, parse_float=Decimal)
    except (ValueError, RecursionError):
        return _PageAttempt(problem="the page is not valid JSON", transient=True)
    problem = _shape_problem(body)
    if problem is not None:
        return _PageAttempt(problem=f"the page is not the documented shape: {problem}", transient=True)
    return _PageAttempt(body=body)


def _shape_problem(body: object) -> str | None:
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("data"), list):
        return "data is missing or not a list"
    has_more = body.get("has_more")
    if not isinstance(has_more, bool):
        return "has_more is missing or not true/false"
    cursor = body.get("next_cursor")
    if has_more and (not isinstance(cursor, str) or not cursor):
        # Stopping here would silently drop every later account from the report.
        return "has_more is true but next_cursor is not a non-empty string"
    return None


def _parse_page(number: int, data: list) -> AmsPage:
    rows: list[AccountRow] = []
    rejected: list[RejectedRow] = []
    warnings: list[RejectedRow] = []
    for position, raw in enumerate(data):
        if not isinstance(raw, dict):
            rejected.append(RejectedRow(number, position, "the row is not a JSON object"))
            continue
        id_problem = account_id_problem(raw.get("account_id"))
        if id_problem is not None:
            rejected.append(RejectedRow(number, position, id_problem))
            continue
        account_id: str = raw["account_id"]

        def warn(reason: str) -> None:
            warnings.append(RejectedRow(number, position, reason, account_id))

        name = raw.get("account_name")
        if not isinstance(name, str):
            warn("account_name missing or not a string; kept as an empty name")
            name = ""
        repaired = repair_account_name(name)
        if repaired.reason is not None:
            warn(repaired.reason)
            name = repaired.text
        status = raw.get("status")
        if not isinstance(status, str):
            warn("status missing or not a string; the row counts as not active")
            status = ""
        elif repair_account_name(status).reason is not None:  # it could not be "active"; and not UTF-8
            warn("status is not valid text; the row counts as not active")
            status = ""
        updated_at = parse_timestamp(raw.get("updated_at"))
        if updated_at is None:
            warn("updated_at missing or unreadable; the row ranks below any dated row")
        rows.append(AccountRow(account_id, name, status, updated_at))
    return AmsPage(number, rows, rejected, warnings)


def account_id_problem(value: object) -> str | None:
    """Why ``value`` is not a valid account id (api-contract section 2), or ``None`` if it is one.

    The reason never quotes the value: a malformed id could be any text, a name included.
    """
    if value is None:
        return "account_id missing"
    if not isinstance(value, str):
        return f"account_id is not a string (JSON {_json_type(value)})"
    if not value:
        return "account_id is empty"
    if len(value) > MAX_ACCOUNT_ID_LENGTH:
        return f"account_id is {len(value)} characters long (at most {MAX_ACCOUNT_ID_LENGTH})"
    if not ACCOUNT_ID.fullmatch(value):
        return "account_id has characters other than ASCII letters, digits, '-', '_' and '.'"
    return None


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 ``updated_at`` in UTC; a value without offset is taken as UTC so all rows compare."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
