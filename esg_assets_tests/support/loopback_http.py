"""pytest-httpserver as the firm API client tests use it, and the token endpoint they all need.

The ``httpserver`` fixture of lib/firm_api/conftest.py yields a ``LoopbackHTTPServer``: pytest-httpserver's
``HTTPServer`` with three differences from the plugin's own fixture, each for a reason:

- one server per test, not one per session: a handler still sleeping when its test ends (a reply slower than
  the client's timeout) must not answer into the next test's log;
- threaded, on 127.0.0.1 (the clients allow plain http on loopback only): the pacing and token tests send from
  up to 64 threads at once, and a slow reply must not hold up the retry that follows it;
- ``requests_to()``: the requests in the order they arrived, each with ``arrived`` (time.monotonic()), and the
  most requests handled at once (``max_in_flight``). The tests read these rather than pytest-httpserver's
  ``log``, which lists a request only once its reply is made: a reply a hook delays past the client's timeout
  would be missing when the test counts requests, and the pacing test needs arrival times and the server's own
  count of requests in flight.

Replies are scripted with pytest-httpserver's own API: ``expect_oneshot_request`` (used once, in the order
registered), ``expect_request`` (every matching request), ``respond_with_json``/``respond_with_data``/
``respond_with_handler``, and the ``Delay`` hook for a slow server.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class LoopbackHTTPServer(HTTPServer):
    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", port=0, threaded=True)
        self._lock = threading.Lock()
        self.arrivals: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def thread_target(self) -> None:
        # A short poll interval: stop() waits for the serve loop to notice, 0.5 s by default, once per test.
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)

    def dispatch(self, request: Request) -> Response:
        request.arrived = time.monotonic()  # the request line, headers and body have been read
        with self._lock:
            self.arrivals.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return super().dispatch(request)
        finally:
            # Counted until the reply is made, just before it is written: never more than the client had.
            with self._lock:
                self.in_flight -= 1

    def requests_to(self, path_prefix: str = "") -> list[Request]:
        """The requests whose path starts with ``path_prefix``, in the order they arrived."""
        with self._lock:
            return [request for request in self.arrivals if request.path.startswith(path_prefix)]


def raw_target(request: Request) -> str:
    """The request target as the client sent it: path and query still percent-encoded, or the absolute URL a
    client sends to a proxy."""
    return request.environ["RAW_URI"]


def json_response(body: object, status: int = 200, **headers: str) -> Response:
    """``body`` as JSON; header names given with ``_`` for ``-`` (``Retry_After="2"``)."""
    return Response(
        json.dumps(body),
        status=status,
        headers={name.replace("_", "-"): value for name, value in headers.items()},
        content_type="application/json",
    )


def token_endpoint(
    tokens: Iterable[str] = (), expires_in: int | None = 3600
) -> Callable[[Request], Response]:
    """A handler for the OAuth2 token endpoint handing out ``tok-1``, ``tok-2``, ... (or the given tokens).

    ``expires_in=None`` leaves the field out, as RFC 6749 allows.
    """
    issued = iter(tokens)
    counter = itertools.count(1)
    lock = threading.Lock()

    def handle(request: Request) -> Response:
        with lock:
            number = next(counter)
            value = next(issued, f"tok-{number}")
        body = {"access_token": value, "token_type": "Bearer"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return json_response(body)

    return handle


def trickled_response(body: bytes, interval: float, **headers: str) -> Response:
    """``body`` with its Content-Length, one byte every ``interval`` seconds: each read of a client gets a
    byte well within any read timeout longer than ``interval``, while the whole response takes
    ``len(body) * interval`` seconds. The trickle stops once the client has gone (a write fails)."""

    def bytes_one_by_one() -> Iterable[bytes]:
        for index in range(len(body)):
            time.sleep(interval)
            yield body[index : index + 1]

    return Response(
        bytes_one_by_one(),
        headers={"Content-Length": str(len(body)), **{k.replace("_", "-"): v for k, v in headers.items()}},
        content_type="application/json",
        direct_passthrough=True,
    )


class HeaderTricklingServer:
    """A loopback TCP server that answers each request with a status line and headers sent one byte every
    ``interval`` seconds (pytest-httpserver writes headers at once). Use as a context manager; ``url``."""

    def __init__(
        self, interval: float, head: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    ):
        self._interval = interval
        self._head = head + b"X-Padding: " + b"p" * 200 + b"\r\n\r\n"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()

    def __enter__(self) -> "HeaderTricklingServer":
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)  # the request: small, one read
            try:
                for index in range(len(self._head)):
                    if self._stop.wait(self._interval):
                        return
                    connection.sendall(self._head[index : index + 1])
            except OSError:  # the client gave up: what it should do
                return
