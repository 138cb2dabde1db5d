"""A hand-written HTTP/1.1 server on 127.0.0.1 whose answers each test scripts, for the scripts that reset a
connection.

Kept because pytest-httpserver cannot do that: it answers every request with a response that werkzeug
writes, while these tests need the connection reset (a TCP RST, after the request has been read) in the middle
of a sequence of ordinary replies, to show the clients retry a dropped connection, count it, and do not retry
it again inside urllib3. Everything else the firm API tests script (replies, delays, recording the requests)
is done with pytest-httpserver (support/loopback_http.py); use that unless a test needs ``Reply(drop=True)``.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body`` may be bytes, text, or anything JSON-encodable (sent as JSON)."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering: a slow server
    drop: bool = False  # reset the connection instead of answering: why this server exists


def json_reply(body: object, status: int = 200, **headers: str) -> Reply:
    return Reply(status=status, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str  # the request target as sent: path and query, still percent-encoded
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(urlsplit(self.target).query).items()}


Handler = Callable[[RecordedRequest], Reply]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of many threads connecting at once, and the
    # kernel retries them only after a second.
    request_queue_size = 128
    # A handler still sleeping (a slow reply) must neither keep the process alive nor delay the end of the
    # test.
    daemon_threads = True
    block_on_close = False


class ScriptedServer:
    """Answers each request from, in this order: a handler routed by path prefix (``route``), the next
    scripted ``Reply`` (``script``), the default ``handler``. With none of them the answer is 599, so a
    test notices an unexpected request.

    Use as a context manager. ``url`` is the base URL; ``requests_to()`` lists what arrived, in order.
    """

    def __init__(self, handler: Handler | None = None):
        self._handler = handler
        self._routes: dict[str, Handler] = {}
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._httpd = _Server(("127.0.0.1", 0), _make_request_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="scripted-server", daemon=True
        )  # a short poll interval: shutdown() waits for one

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path_prefix: str, handler: Handler) -> ScriptedServer:
        self._routes[path_prefix] = handler
        return self

    def script(self, *replies: Reply) -> ScriptedServer:
        with self._lock:
            self._script.extend(replies)
        return self

    def requests_to(self, path_prefix: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.startswith(path_prefix)]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
        for prefix, handler in self._routes.items():
            if request.path.startswith(prefix):
                return handler(request)
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        if self._handler is not None:
            return self._handler(request)
        return Reply(status=599, body={"error": "unscripted request"})


def _make_request_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            pass  # keep test output clean

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                target=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            reply = server._answer(request)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                self._reset_connection()
                return
            try:
                self._write(reply)
            except OSError:
                self.close_connection = True  # the client gave up (timeout) before we answered

        def _write(self, reply: Reply) -> None:
            payload = _encode(reply.body)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status not in (204, 304):
                has_type = any(name.lower() == "content-type" for name in reply.headers)
                if isinstance(reply.body, dict | list) and not has_type:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if reply.status not in (204, 304):
                self.wfile.write(payload)
            self.wfile.flush()

        def _reset_connection(self) -> None:
            # SO_LINGER 0 makes close() send a RST: the client sees the connection dropped mid-request.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

    return RequestHandler


def _encode(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def token_handler(tokens: Iterable[str] = (), expires_in: int | None = 3600) -> Handler:
    """A token endpoint handing out ``tok-1``, ``tok-2``, ... (or the given tokens) in order.

    ``expires_in=None`` leaves the field out, as RFC 6749 allows.
    """
    issued = iter(tokens)
    counter = 0
    lock = threading.Lock()

    def handle(request: RecordedRequest) -> Reply:
        nonlocal counter
        with lock:
            counter += 1
            value = next(issued, f"tok-{counter}")
        body = {"access_token": value, "token_type": "Bearer"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return json_reply(body)

    return handle
