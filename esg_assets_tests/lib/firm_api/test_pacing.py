"""RequestGate: even starts, no burst, a shared pause; checked on a fake clock and by a strict server
(pytest-httpserver, answering with the token bucket below)."""

from __future__ import annotations

import threading
import time

import pytest
from pytest_httpserver.hooks import Delay
from werkzeug import Request, Response

from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets_tests.support.loopback_http import json_response


class FakeTime:
    """A clock that only moves when someone sleeps; ``on_sleep`` runs once, during the next sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        hook, self.on_sleep = self.on_sleep, None
        if hook is not None:
            hook()
        self.now += seconds


@pytest.fixture
def fake():
    return FakeTime()


def gate_on(fake: FakeTime, rate: float = 10.0, max_in_flight: int = 4) -> RequestGate:
    return RequestGate(rate, max_in_flight, clock=fake.clock, sleep=fake.sleep)


def starts(gate: RequestGate, fake: FakeTime, count: int) -> list[float]:
    seen = []
    for _ in range(count):
        with gate.slot():
            seen.append(round(fake.now, 9))
    return seen


@pytest.mark.unit
def test_starts_are_spaced_evenly_from_the_first_request(fake):
    gate = gate_on(fake, rate=10.0)

    assert starts(gate, fake, 5) == [0.0, 0.1, 0.2, 0.3, 0.4]


@pytest.mark.unit
def test_idle_time_earns_no_burst(fake):
    gate = gate_on(fake, rate=10.0)
    starts(gate, fake, 2)
    fake.now = 100.0  # a long quiet spell

    assert starts(gate, fake, 3) == [100.0, 100.1, 100.2]


@pytest.mark.unit
def test_hold_off_delays_the_next_start_then_pacing_resumes(fake):
    gate = gate_on(fake, rate=10.0)
    starts(gate, fake, 1)
    fake.now = 0.05
    gate.hold_off(2.0)

    assert starts(gate, fake, 2) == [2.05, 2.15]


@pytest.mark.unit
def test_a_shorter_or_empty_hold_off_does_not_shorten_a_longer_one(fake):
    gate = gate_on(fake, rate=10.0)
    gate.hold_off(5.0)
    gate.hold_off(1.0)
    gate.hold_off(0)
    gate.hold_off(-3)

    assert starts(gate, fake, 1) == [5.0]


@pytest.mark.unit
def test_a_turn_handed_out_before_a_hold_off_is_taken_back(fake):
    gate = gate_on(fake, rate=10.0)
    starts(gate, fake, 1)  # t=0; the next turn is t=0.1
    # While waiting for t=0.1, a 429 arrives elsewhere and pauses everyone for 1 s.
    fake.on_sleep = lambda: gate.hold_off(1.0)

    assert starts(gate, fake, 2) == [1.0, 1.1]


@pytest.mark.unit
def test_a_slow_rate_is_paced_too(fake):
    gate = gate_on(fake, rate=0.5)

    assert starts(gate, fake, 3) == [0.0, 2.0, 4.0]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("rate", "in_flight"), [(0, 4), (-1, 4), (float("inf"), 4), (float("nan"), 4), (10, 0)]
)
def test_invalid_settings_are_refused(rate, in_flight):
    with pytest.raises(ValueError):
        RequestGate(rate, in_flight)


# --- real threads against a server that enforces the limits ------------------------------------------

RATE = 100.0  # requests per second, for the gate and the server alike
IN_FLIGHT = 8
# The server's burst allowance, 100 ms worth: it absorbs the scheduling jitter of a loaded CI machine
# (client and server share one process here), not a burst. Unpaced, the same load is 20x over it.
BUCKET_CAPACITY = 10
TOTAL = 300
THREADS = 32


class StrictServer:
    """Counts requests that a token bucket of RATE/s (capacity BUCKET_CAPACITY) would refuse."""

    def __init__(self, reply_delay: float = 0.04) -> None:
        self.lock = threading.Lock()
        self.tokens = float(BUCKET_CAPACITY)
        self.refilled_at: float | None = None
        self.violations = 0
        self.violation_times: list[float] = []  # for the failure message
        self.reply_delay = reply_delay

    def __call__(self, request: Request) -> Response:
        with self.lock:
            if self.refilled_at is not None:
                elapsed = request.arrived - self.refilled_at
                self.tokens = min(BUCKET_CAPACITY, self.tokens + elapsed * RATE)
            self.refilled_at = request.arrived
            if self.tokens >= 1:
                self.tokens -= 1
                status = 200
            else:
                self.violations += 1
                self.violation_times.append(request.arrived)
                status = 429
        time.sleep(self.reply_delay)
        return json_response({"ok": True}, status=status)


def push(url: str, gate: RequestGate | None, total: int = TOTAL) -> int:
    """Send ``total`` requests from THREADS threads, through ``gate`` if given; return the most the client
    had in flight at once."""
    session = build_session(pool_size=THREADS, ca_bundle=None)
    remaining = iter(range(total))
    lock = threading.Lock()
    in_flight = most = 0

    def send_one() -> None:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            session.get(url + "/v1/x", timeout=10)
        finally:
            with lock:
                in_flight -= 1

    def worker() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            if gate is None:
                send_one()
            else:
                with gate.slot():
                    send_one()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    session.close()
    return most


@pytest.mark.integration
def test_thirty_two_threads_through_the_gate_stay_within_the_servers_limits(httpserver):
    strict = StrictServer()
    httpserver.expect_request("/v1/x").respond_with_handler(strict)
    client_most = push(httpserver.url, RequestGate(RATE, IN_FLIGHT))

    requests = httpserver.requests_to()
    assert len(requests) == TOTAL
    first = requests[0].arrived
    late = [round(t - first, 3) for t in strict.violation_times[:10]]
    assert strict.violations == 0, f"{strict.violations} over the bucket, at seconds {late}"
    assert httpserver.max_in_flight <= IN_FLIGHT and client_most <= IN_FLIGHT


@pytest.mark.integration
def test_the_same_load_without_the_gate_breaks_the_servers_limits(httpserver):
    # Shows the server's checks have teeth: unpaced, the 32 threads are over both limits at once.
    strict = StrictServer()
    httpserver.expect_request("/v1/x").respond_with_handler(strict)
    client_most = push(httpserver.url, gate=None)

    assert strict.violations > 0
    assert httpserver.max_in_flight > IN_FLIGHT and client_most > IN_FLIGHT


@pytest.mark.integration
def test_when_the_server_is_slow_the_in_flight_limit_is_what_holds_requests_back(httpserver):
    # 32 threads, replies taking 50 ms, a rate that never binds: only the slots keep the count at 4.
    httpserver.expect_request("/v1/x").with_post_hook(Delay(0.05)).respond_with_json({"ok": True})
    client_most = push(httpserver.url, RequestGate(rate_per_second=1000, max_in_flight=4), total=60)

    assert len(httpserver.requests_to()) == 60
    assert httpserver.max_in_flight <= 4
    assert client_most == 4  # 32 threads and 50 ms replies: the four slots are always taken


@pytest.mark.unit
def test_hold_off_pauses_every_thread():
    gate = RequestGate(rate_per_second=50.0, max_in_flight=4)
    started: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            with gate.slot():
                with lock:
                    started.append(time.monotonic())

    held_at = time.monotonic()
    gate.hold_off(0.3)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(started) == 20
    assert min(started) >= held_at + 0.3  # a lower bound: a slow machine only starts later
