"""Measures what the fetch's progress reports cost: writing one (every 10 s while esg_ratings fetches) and
the sensors' read of a 10-minute window after a 4-hour fetch's worth of them, on a SQLite instance.

    .venv/bin/python bench/progress_cost.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone

from dagster import DagsterInstance, asset, instance_for_test, materialize

from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.fetching_runs import progress_of
from esg_assets.defs.daily_ratings.fetch_progress import report_progress

PARTITION = "2026-12-02"
REPORTS = 1440  # a 4-hour fetch, one report every 10 s


def main() -> None:
    with tempfile.TemporaryDirectory() as home, instance_for_test(temp_dir=home) as instance:
        run_id = _a_run(instance)
        record = instance.get_run_record_by_id(run_id)
        started = time.time()
        began = time.perf_counter()
        for number in range(REPORTS):
            report = RatingsProgressMetadata(
                run_id=run_id,
                done=number * 50,
                to_fetch=1_000_000,
                requests=number * 50,
                elapsed_seconds=10.0 * (number + 1),
                fetch_started_at=started,
            )
            report_progress(instance, PARTITION, report)
        write = (time.perf_counter() - began) / REPORTS
        began = time.perf_counter()
        for _ in range(10):
            window = progress_of(instance, PARTITION, record, 600)
        read = (time.perf_counter() - began) / 10
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d}: write {write * 1000:.1f} ms a report ({REPORTS} written); "
    )
    print(f"read of a 600 s window after them: {read * 1000:.1f} ms ({len(window)} reports)")


def _a_run(instance: DagsterInstance) -> str:
    """A run in the instance, whose record (id, start time) the reports are read by."""

    @asset
    def placeholder() -> None:
        return None

    return materialize([placeholder], instance=instance).run_id


if __name__ == "__main__":
    main()
