"""The parallel fetch hands back every result once, in bounded batches, keeping what finished when stopped."""

import gc
import threading
import time

import pytest

from esg_assets.core.ratings.model import FetchTask, ProcessingStatus, RatingResult
from esg_assets.defs.daily_ratings.fetch_pool import fetch_ratings

pytestmark = pytest.mark.unit


def result_of(task: FetchTask) -> RatingResult:
    return RatingResult(task.account_id, None, ProcessingStatus.FAILED, "test", 1, None, None, False, None)


def batches(count: int, size: int = 100):
    ids = [f"ACC-{n:07d}" for n in range(count)]
    return [[FetchTask(account_id) for account_id in ids[i : i + size]] for i in range(0, count, size)]


def test_every_account_is_handed_back_exactly_once_in_batches():
    handed: list[list[str]] = []
    total = fetch_ratings(
        batches(2_500), result_of, workers=8, on_results=lambda rs: handed.append([r.account_id for r in rs]),
        write_batch_size=300,
    )  # fmt: skip
    ids = [account_id for batch in handed for account_id in batch]
    assert total == 2_500 and sorted(ids) == [f"ACC-{n:07d}" for n in range(2_500)]
    # A batch is cut as soon as it is full, after taking at most a window (here one write batch) of results at
    # once.
    assert max(len(batch) for batch in handed) < 300 + 300


def test_no_more_tasks_run_at_once_than_there_are_workers():
    in_flight = peak = 0
    lock = threading.Lock()

    def slow(task):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.001)
        with lock:
            in_flight -= 1
        return result_of(task)

    fetch_ratings(batches(3_000), slow, workers=4, on_results=lambda rs: None)
    assert peak <= 4


def test_an_error_in_a_worker_stops_the_run_and_keeps_what_finished():
    kept: list[str] = []

    def fetch(task):
        if task.account_id == "ACC-0000500":
            raise RuntimeError("bug in fetch")
        return result_of(task)

    with pytest.raises(RuntimeError, match="bug in fetch"):
        fetch_ratings(
            batches(2_000), fetch, workers=4, on_results=lambda rs: kept.extend(r.account_id for r in rs)
        )
    assert "ACC-0000500" not in kept
    assert len(kept) == len(set(kept)) and len(kept) >= 400


def test_tasks_are_taken_a_window_at_a_time_not_all_at_once():
    """Memory stays flat: the pool never holds more than a window of tasks and a batch of results."""
    taken = 0
    handed = 0
    most_ahead = 0

    def task_batches():
        nonlocal taken
        for batch in batches(20_000):
            taken += len(batch)
            yield batch

    def keep(results):
        nonlocal handed, most_ahead
        most_ahead = max(most_ahead, taken - handed)
        handed += len(results)

    fetch_ratings(task_batches(), result_of, workers=4, on_results=keep, write_batch_size=500)
    assert handed == 20_000
    # A window of tasks (here one write batch: 500), a write batch cut within a window of filling, and the
    # batch being read from: a bound that does not grow with the 20,000 accounts.
    assert most_ahead <= 500 + (500 + 500) + 100


def test_the_collector_leaves_what_existed_before_the_fetch_alone_and_then_has_it_back():
    """Full collections over the whole heap stall every worker; the objects alive at the start are frozen."""
    assert gc.get_freeze_count() == 0
    frozen_during: list[int] = []

    def fetch(task):
        frozen_during.append(gc.get_freeze_count())
        return result_of(task)

    fetch_ratings(batches(200), fetch, workers=4, on_results=lambda rs: None)
    assert min(frozen_during) > 0 and gc.get_freeze_count() == 0

    def failing(task):
        raise RuntimeError("bug in fetch")

    with pytest.raises(RuntimeError):
        fetch_ratings(batches(200), failing, workers=4, on_results=lambda rs: None)
    assert gc.get_freeze_count() == 0
