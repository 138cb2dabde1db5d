"""Fetches many accounts' ratings in parallel threads, in bounded windows, handing results back in batches."""

from __future__ import annotations

import gc
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable

from esg_assets.core.ratings.model import FetchTask, RatingResult


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

    At most a window of tasks is queued at once (a few per worker, or one write batch if that is more), so
    memory does not grow with the number of accounts.
    Results are handed to ``on_results`` (which commits them) every ``write_batch_size`` results or
    ``flush_interval_seconds``, and once more for whatever finished before an interruption, so a killed or
    cancelled run loses at most the requests that were in flight.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    stopping = threading.Event()
    # Long-lived workers on two plain queues rather than a ThreadPoolExecutor: its Future per task (a
    # Condition and a lock each) was the largest single share of the time the job held the GIL (py-spy;
    # docs/performance.md). One completion queue also costs the same to wait on whatever the window, where
    # concurrent.futures.wait() re-registers a waiter on every pending future at every call.
    todo: queue.SimpleQueue[FetchTask | None] = queue.SimpleQueue()
    completed: queue.SimpleQueue[tuple[RatingResult | None, BaseException | None]] = queue.SimpleQueue()

    def work() -> None:
        while (task := todo.get()) is not None:
            if stopping.is_set():
                completed.put((None, FetchCancelled(task.account_id)))
                continue
            try:
                completed.put((fetch(task), None))
            except BaseException as error:  # handed to the main thread, which raises it
                completed.put((None, error))

    threads = [threading.Thread(target=work, name=f"esg-fetch-{n}") for n in range(workers)]

    def stop_workers() -> None:
        if stopping.is_set():
            return
        stopping.set()
        for _ in threads:
            todo.put(None)  # each worker ends at its first None, after the queued tasks (cancelled) before it
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join()  # a request in flight ends within its timeout

    # Every full collection of Python's garbage collector walks all the objects the process holds, Dagster's
    # included, while every thread waits, and the pause is lost to the pacing, which never bursts to catch up.
    # Objects alive now live to the end of the step: freezing them leaves the collector only what the fetch
    # itself allocates (docs/performance.md).
    gc.freeze()
    tasks = itertools.chain.from_iterable(task_batches)
    # Tasks queued ahead of the workers: at least a write batch's worth, so that while this thread commits a
    # batch (longer when DuckDB checkpoints at a commit) the workers still have work (docs/performance.md).
    window = max(4 * workers, 64, write_batch_size)
    outstanding = 0
    finished: list[RatingResult] = []
    handed_back = 0
    last_flush = last_progress = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        exhausted = False
        while True:
            while not exhausted and outstanding < window:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    todo.put(task)
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
        stop_workers()
        # Keep what finished, the requests that were in flight included: those accounts are not asked for
        # again when the run resumes.
        finished.extend(result for result, error in _drain(completed, wait_seconds=0) if error is None)
        if finished:
            on_results(finished)
        raise
    finally:
        stop_workers()
        gc.unfreeze()
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
