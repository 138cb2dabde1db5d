"""Reading a response within a size limit and a total deadline (docs/api-contract.md, section 5).

A socket timeout bounds each read, not the response: a server that trickles a byte at a time just under it
holds the reader for as long as it likes. So the status line, the headers and the body are read under a
deadline kept by one watchdog thread, which shuts the socket's reading side when the deadline passes (as
urllib3's ``HTTPResponse.shutdown`` does, made for interrupting a blocked read from another thread); the read
then returns and the reader raises a timeout.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from esg_assets.lib.firm_api.errors import ResponseTooLargeError

MIB = 1024 * 1024
_COMPACT_AFTER = 256
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ReadResponse:
    """A response whose body was read whole, within its limits."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive, as urllib3 gives them
    content: bytes


class _Watch:
    __slots__ = ("interrupt", "finished", "fired")

    def __init__(self, interrupt: Callable[[], None]):
        self.interrupt = interrupt
        self.finished = False
        self.fired = False


class ResponseDeadlines:
    """One daemon thread that interrupts every read still going at its deadline; shared by all requests.

    A thread per request would cost more than the request on the hot path; a heap of deadlines costs a push.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._finished = 0  # entries of the heap whose block has ended, dropped lazily
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, deadline: float, interrupt: Callable[[], None]) -> Iterator[_Watch]:
        """Call ``interrupt`` if the block is still running at ``deadline`` (a ``clock`` time); never after.

        ``interrupt`` runs under the lock that leaving the block takes, so it cannot hit a connection that
        was already handed back to the pool and reused by another request.
        """
        watch = _Watch(interrupt)
        with self._condition:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="esg-response-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is watch:
                self._condition.notify()
        try:
            yield watch
        finally:
            with self._condition:
                watch.finished = True
                self._finished += 1
                # Most blocks end long before their deadline: without this, a busy client's heap would
                # hold every request of the last timeout's worth of seconds.
                if self._finished > _COMPACT_AFTER and 2 * self._finished > len(self._heap):
                    self._heap = [entry for entry in self._heap if not entry[2].finished]
                    heapq.heapify(self._heap)
                    self._finished = 0

    def entries(self) -> int:
        """Deadlines held, those of ended blocks not yet dropped included: what the watchdog costs."""
        with self._condition:
            return len(self._heap)

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                    self._finished -= 1
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watch = self._heap[0]
                wait = deadline - self._clock()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watch.fired = True
                try:
                    watch.interrupt()
                except OSError:  # the socket is already closed: the read is over anyway
                    pass


DEADLINES = ResponseDeadlines()

# The deadline of the request this thread is sending, for the connection reading its status line and headers.
_request_deadline: ContextVar[float | None] = ContextVar("esg_request_deadline", default=None)


@contextmanager
def request_deadline(deadline: float) -> Iterator[None]:
    """Within the block, a connection of ``DEADLINE_POOL_CLASSES`` reads a response's status line and headers
    under ``deadline`` (a ``time.monotonic`` time); ``read_bounded`` then reads its body under it."""
    token = _request_deadline.set(deadline)
    try:
        yield
    finally:
        _request_deadline.reset(token)


class _HeadersWithinDeadline:
    """Mixed into urllib3's connections: the status line and headers, too, must come by the deadline."""

    def getresponse(self):
        deadline = _request_deadline.get()
        sock = self.sock
        if deadline is None or sock is None:
            return super().getresponse()
        with DEADLINES.watch(deadline, lambda: sock.shutdown(socket.SHUT_RD)) as watch:
            try:
                response = super().getresponse()
            except (OSError, http.client.HTTPException) as error:
                if watch.fired:
                    # A socket timeout: urllib3 reports it as a read timeout, as for any other read.
                    raise TimeoutError("the response headers did not come within the timeout") from error
                raise
            if watch.fired:  # the headers may seem to end where the shutdown cut them
                response.close()
                raise TimeoutError("the response headers did not come within the timeout")
            return response


class _DeadlineHTTPConnection(_HeadersWithinDeadline, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_HeadersWithinDeadline, HTTPSConnection):
    pass


class _DeadlineHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


# For a PoolManager's ``pool_classes_by_scheme``: its connections honour ``request_deadline``.
DEADLINE_POOL_CLASSES = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


def read_bounded(
    response: urllib3.BaseHTTPResponse,
    *,
    limit: int,
    deadline: float,
    timeout: float,
    deadlines: ResponseDeadlines = DEADLINES,
) -> ReadResponse:
    """The whole body of ``response``, if it is at most ``limit`` bytes and complete by ``deadline``.

    Raises ``ResponseTooLargeError`` past the limit (a Content-Length over it is refused unread),
    ``requests.ReadTimeout`` past the deadline and ``requests.ConnectionError`` when the body breaks off.
    Whatever goes wrong, the connection is closed, not pooled: its unread rest would be taken for the next
    response.
    """
    complete = False
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(_too_large(limit))
        chunks: list[bytes] = []
        size = 0
        with deadlines.watch(deadline, response.shutdown) as watch:
            try:
                for chunk in response.stream(_CHUNK, decode_content=True):
                    size += len(chunk)
                    if size > limit:
                        raise ResponseTooLargeError(_too_large(limit))
                    chunks.append(chunk)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                # Raised as the requests exceptions the clients already handle for the rest of a request.
                if watch.fired or isinstance(error, urllib3.exceptions.ReadTimeoutError):
                    raise requests.ReadTimeout(_late(timeout)) from error
                raise requests.ConnectionError(error) from error
        if watch.fired:  # the shutdown can look like a clean end of a body without a declared length
            raise requests.ReadTimeout(_late(timeout))
        complete = True
        return ReadResponse(response.status, response.headers, b"".join(chunks))
    finally:
        if not complete:
            response.close()
        response.release_conn()


def _too_large(limit: int) -> str:
    return f"response body over {limit // MIB} MiB" if limit >= MIB else f"response body over {limit} bytes"


def _late(timeout: float) -> str:
    return f"response not complete within the {timeout:g} s timeout"
