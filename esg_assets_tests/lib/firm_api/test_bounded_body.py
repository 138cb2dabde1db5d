"""The deadline watchdog: it interrupts a read still going at its deadline, and never one that has ended."""

import threading
import time

import pytest

from esg_assets.lib.firm_api.bounded_body import ResponseDeadlines

pytestmark = pytest.mark.unit


def test_a_read_still_going_at_its_deadline_is_interrupted():
    deadlines = ResponseDeadlines()
    interrupted = threading.Event()
    started = time.monotonic()
    with deadlines.watch(started + 0.1, interrupted.set) as watch:
        assert interrupted.wait(2.0)
    assert watch.fired
    assert 0.09 <= time.monotonic() - started < 1.0


def test_a_read_that_ended_is_never_interrupted_later():
    deadlines = ResponseDeadlines()
    interrupted = threading.Event()
    with deadlines.watch(time.monotonic() + 0.05, interrupted.set) as watch:
        pass
    assert not interrupted.wait(0.3)
    assert not watch.fired


def test_deadlines_fire_in_their_own_order_whatever_order_they_were_set_in():
    deadlines = ResponseDeadlines()
    fired: list[str] = []
    now = time.monotonic()
    with deadlines.watch(now + 0.3, lambda: fired.append("late")):
        with deadlines.watch(now + 0.1, lambda: fired.append("early")):
            time.sleep(0.5)
    assert fired == ["early", "late"]


def test_ended_blocks_do_not_pile_up_until_their_deadlines():
    deadlines = ResponseDeadlines()
    far = time.monotonic() + 3600
    for _ in range(10_000):
        with deadlines.watch(far, lambda: None):
            pass
    assert deadlines.entries() <= 2 * 256 + 2  # compacted as it goes, not 10,000 entries
