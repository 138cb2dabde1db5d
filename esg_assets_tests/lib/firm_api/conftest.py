"""Fixtures of the firm API client tests: pytest-httpserver's server, one per test (support/loopback_http.py
says how and why), and the hand-written server kept for what pytest-httpserver cannot do, resetting a
connection (support/scripted_server.py)."""

import pytest

from esg_assets_tests.support.loopback_http import LoopbackHTTPServer
from esg_assets_tests.support.scripted_server import ScriptedServer, token_handler


@pytest.fixture
def httpserver():
    """pytest-httpserver's HTTPServer for this test alone: threaded, on 127.0.0.1. After the test, a request
    no handler expected, or a handler that raised, fails it (pytest-httpserver answers such a request 500 and
    records it, and the client under test may well have taken that 500 in its stride)."""
    server = LoopbackHTTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    server.check_assertions()
    server.check_handler_errors()


@pytest.fixture
def dropping_server():
    """The hand-written server, token endpoint at /token, for tests whose script resets a connection."""
    with ScriptedServer() as running:
        running.route("/token", token_handler())
        yield running
