"""A gate that keeps all worker threads together under the API's request rate and in-flight limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Why not pyrate-limiter: it sustains less than the full rate, its defaults burst, it has no shared pause for
# a 429's Retry-After, and it starts a background thread (docs/performance.md, "Measurements behind code
# choices"). A next-start-time scheduler under a lock is a few lines and does exactly what we need.


class RequestGate:
    """Admits requests at most ``max_in_flight`` at a time, starting them evenly ``1/rate`` seconds apart.

    The server's limit is a token bucket, so we stay under it rather than probe it: starts are scheduled
    one interval apart from the very first request (a GCRA with no burst allowance), and idle time earns
    no credit for a later burst. One gate is shared by every thread that talks to the same API.
    """

    def __init__(
        self,
        rate_per_second: float,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not rate_per_second > 0 or rate_per_second == float("inf"):
            raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.rate_per_second = rate_per_second
        self.max_in_flight = max_in_flight
        self._interval = 1.0 / rate_per_second
        self._clock = clock
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._next_start = float("-inf")  # earliest start not yet handed out
        self._held_until = float("-inf")  # nobody starts before this (a server asked us to back off)
        self._hold_epoch = 0  # bumped by every hold_off that extends the pause

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold an in-flight slot and wait for this request's start time; send exactly one request inside."""
        with self._slots:
            self._wait_for_turn()
            yield

    def hold_off(self, seconds: float) -> None:
        """Make every thread wait ``seconds`` from now before its next start (a 429 came with Retry-After).

        Turns already handed out but not yet reached are taken back too, so one 429 does not become a
        string of them from the threads that were already queued.
        """
        if not seconds > 0:
            return
        with self._lock:
            until = self._clock() + seconds
            if until > self._held_until:
                self._held_until = until
                self._next_start = max(self._next_start, until)
                self._hold_epoch += 1

    def _wait_for_turn(self) -> None:
        while True:
            with self._lock:
                start = max(self._clock(), self._next_start)
                self._next_start = start + self._interval
                epoch = self._hold_epoch
            self._sleep_until(start)
            with self._lock:
                if epoch == self._hold_epoch or start >= self._held_until:
                    return
            # A hold-off arrived while we waited and covers our turn: queue again behind it.

    def _sleep_until(self, deadline: float) -> None:
        # time.sleep may wake a little early on some platforms; loop so we never start before our turn.
        while (remaining := deadline - self._clock()) > 0:
            self._sleep(remaining)
