"""Fetches many accounts' ratings in parallel threads, in bounded windows, handing results back in batches."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from esg_assets.ratings.rating_result import FetchTask, RatingResult


class FetchCancelled(Exception):
    """The run is stopping; the account was not asked for."""


def fetch_ratings(
    task_batches: Iterable[list[FetchTask]],
    fetch: Callable[[FetchTask], RatingResult],
    *,
    workers: int,
    on_results: Callable[[list[RatingResult]], None],
    on_progress: Callable[[int], None] | None = None,
    write_batch_size: int = 1_000,
    flush_interval_seconds: float = 2.0,
    progress_interval_seconds: float = 10.0,
) -> int:
    """Run ``fetch`` for every task on ``workers`` threads; returns how many results were handed back.

    At most a few tasks per worker are queued at once, so memory does not grow with the number of accounts.
    Results are handed to ``on_results`` (which commits them) every ``write_batch_size`` results or
    ``flush_interval_seconds``, and once more for whatever finished before an interruption, so a killed or
    cancelled run loses at most the requests that were in flight.
    """
    stopping = threading.Event()
    # Workers put each outcome on one queue: waiting on it costs the same whatever the window size, where
    # concurrent.futures.wait() re-registers a waiter on every pending future at every call.
    completed: queue.SimpleQueue[tuple[RatingResult | None, BaseException | None]] = queue.SimpleQueue()

    def work(task: FetchTask) -> None:
        if stopping.is_set():
            completed.put((None, FetchCancelled(task.account_id)))
            return
        try:
            completed.put((fetch(task), None))
        except BaseException as error:  # handed to the main thread, which raises it
            completed.put((None, error))

    tasks = itertools.chain.from_iterable(task_batches)
    window = max(4 * workers, 64)
    outstanding = 0
    finished: list[RatingResult] = []
    handed_back = 0
    last_flush = last_progress = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esg-fetch")
    try:
        exhausted = False
        while True:
            while not exhausted and outstanding < window:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    pool.submit(work, task)
                    outstanding += 1
            if not outstanding:
                break
            for result, error in _drain(completed, wait_seconds=1.0):
                outstanding -= 1
                if error is not None:
                    raise error
                finished.append(result)
            now = time.monotonic()
            if len(finished) >= write_batch_size or (finished and now - last_flush >= flush_interval_seconds):
                on_results(finished)
                handed_back += len(finished)
                finished = []
                last_flush = now
            if on_progress is not None and now - last_progress >= progress_interval_seconds:
                on_progress(handed_back + len(finished))
                last_progress = now
    except BaseException:
        stopping.set()
        # Keep what already finished: those accounts are not asked for again when the run resumes.
        finished.extend(result for result, error in _drain(completed, wait_seconds=0) if error is None)
        if finished:
            on_results(finished)
        raise
    finally:
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)
    if finished:
        on_results(finished)
        handed_back += len(finished)
    return handed_back


def _drain(completed: queue.SimpleQueue, wait_seconds: float) -> list[tuple]:
    """Everything on the queue now, waiting up to ``wait_seconds`` for the first item when it is empty."""
    outcomes = []
    try:
        outcomes.append(completed.get(timeout=wait_seconds) if wait_seconds else completed.get_nowait())
        while True:
            outcomes.append(completed.get_nowait())
    except queue.Empty:
        return outcomes
