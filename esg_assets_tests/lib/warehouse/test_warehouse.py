"""The warehouse: its memory limit, the held rating per account, and day-sized reads a range at a time."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from esg_assets.core.ratings.model import ProcessingStatus, RatingResult, RatingValues
from esg_assets.lib.firm_api.ams import AccountRow, AmsPage
from esg_assets.lib.warehouse.account_snapshots import SnapshotWriter
from esg_assets.lib.warehouse.ratings import (
    account_id_ranges,
    iter_error_rows,
    iter_fetch_tasks,
    iter_file_rows,
    iter_snapshot_ids,
    plan_fetch,
    write_results,
)
from esg_assets.lib.warehouse.resource import WarehouseMemoryError
from esg_assets.lib.warehouse.run_statistics import RunHistoryRow, record_run_history
from esg_assets_tests.support.warehouses import FETCHED, snapshot, warehouse_at

DAY = date(2026, 11, 20)


def values(score: str) -> RatingValues:
    number = Decimal(score)
    return RatingValues(number, number, number, number, "Social", number, date(2026, 11, 19))


def success(
    account_id: str, score: str = "50.00", etag: str | None = '"e1"', at: datetime = FETCHED
) -> RatingResult:
    return RatingResult(account_id, values(score), ProcessingStatus.SUCCESSFUL, None, 1, 200, etag, False, at)


def failure(account_id: str) -> RatingResult:
    return RatingResult(
        account_id, None, ProcessingStatus.FAILED, "HTTP 503 after 3 attempts", 3, 503, None, False, FETCHED
    )


@pytest.fixture
def warehouse(tmp_path):
    return warehouse_at(str(tmp_path / "warehouse.duckdb"))


@pytest.mark.integration
def test_the_memory_limit_is_applied_to_every_connection(tmp_path):
    resource = warehouse_at(str(tmp_path / "w.duckdb"), memory_limit="1GiB")
    with resource.connect() as connection:
        assert connection.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "1.0 GiB"


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["lots", "64", "64MB'; DROP TABLE esg_ratings; --", ""])
def test_a_bad_memory_limit_is_refused_naming_the_setting(tmp_path, bad):
    with pytest.raises(ValueError, match="Setting ESG_WAREHOUSE_MEMORY_LIMIT must be a DuckDB memory size"):
        with warehouse_at(str(tmp_path / "w.duckdb"), memory_limit=bad).connect():
            pass
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.integration
def test_running_out_of_the_memory_limit_names_the_setting(tmp_path):
    resource = warehouse_at(str(tmp_path / "w.duckdb"), memory_limit="1MB")
    with pytest.raises(WarehouseMemoryError, match=r"ESG_WAREHOUSE_MEMORY_LIMIT \(1MB\).*run the day again"):
        with resource.connect() as connection:
            connection.execute("SELECT list(range) FROM range(10000000)").fetchall()


@pytest.mark.integration
def test_ranges_cover_every_account_once_in_id_order(warehouse):
    ids = [f"ACC-{n:07d}" for n in range(0, 2_500, 3)]
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ids)
        ranges = list(account_id_ranges(connection, DAY, 100))
        assert len(ranges) == 9 and ranges[0][0] == "" and ranges[-1][1] == ids[-1]
        assert all(previous[1] == following[0] for previous, following in zip(ranges, ranges[1:]))
        assert list(account_id_ranges(connection, date(2026, 11, 21), 100)) == []


@pytest.mark.integration
def test_file_error_and_id_reads_are_the_same_whatever_the_range_size(warehouse):
    ids = [f"ACC-{n:07d}" for n in range(1_000)]
    with warehouse.connect() as connection:
        snapshot(connection, DAY, list(reversed(ids)))
        write_results(
            connection, DAY, "run-1", [failure(i) if n % 7 == 0 else success(i) for n, i in enumerate(ids)]
        )
        whole = list(iter_file_rows(connection, DAY, size=10_000))
        assert [row[0] for row in whole] == ids
        assert list(iter_file_rows(connection, DAY, size=33)) == whole
        errors = list(iter_error_rows(connection, DAY, size=33))
        assert [row[0] for row in errors] == ids[::7] and errors == list(iter_error_rows(connection, DAY))
        assert list(iter_snapshot_ids(connection, DAY, size=33)) == ids


@pytest.mark.integration
def test_the_held_rating_is_the_latest_one_with_an_etag(warehouse):
    with warehouse.connect() as connection:
        for day in (date(2026, 11, 18), date(2026, 11, 19), DAY):
            snapshot(connection, day, ["ACC-1", "ACC-2"])
        first = [success("ACC-1", "10.00", '"a"'), success("ACC-2", "20.00", '"b"')]
        write_results(connection, date(2026, 11, 18), "run-1", first)
        later = FETCHED.replace(day=19)
        second = [success("ACC-1", "11.00", '"a2"', later), failure("ACC-2")]
        write_results(connection, date(2026, 11, 19), "run-2", second)

        plan = plan_fetch(connection, DAY)
        assert plan.to_fetch == 2 and plan.with_etag == 2
        tasks = {task.account_id: task for batch in iter_fetch_tasks(connection, 1) for task in batch}
        assert tasks["ACC-1"].etag == '"a2"' and tasks["ACC-1"].held.overall == Decimal("11.00")
        # A failure holds no rating: the one from before it is still the one to ask conditionally against.
        assert tasks["ACC-2"].etag == '"b"' and tasks["ACC-2"].held.overall == Decimal("20.00")
        assert connection.execute("SELECT count(*) FROM held_ratings").fetchone()[0] == 2


@pytest.mark.integration
def test_re_running_an_earlier_day_keeps_the_later_held_rating(warehouse):
    later_day = date(2026, 11, 21)
    with warehouse.connect() as connection:
        for day in (DAY, later_day, date(2026, 11, 22)):
            snapshot(connection, day, ["ACC-1"])
        write_results(connection, later_day, "run-1", [success("ACC-1", "30.00", '"later"')])
        write_results(connection, DAY, "run-2", [success("ACC-1", "20.00", '"earlier"')])  # a backfill

        plan_fetch(connection, date(2026, 11, 22))
        (task,) = [task for batch in iter_fetch_tasks(connection, 10) for task in batch]
        assert task.etag == '"later"' and task.held.overall == Decimal("30.00")
        # The same day written again replaces its own held rating.
        write_results(connection, later_day, "run-3", [success("ACC-1", "31.00", '"later-2"')])
        assert connection.execute("SELECT etag FROM held_ratings").fetchall() == [('"later-2"',)]


@pytest.mark.integration
def test_a_large_day_runs_within_a_small_memory_limit(tmp_path):
    """Every day-sized step spills or reads in ranges: 200,000 accounts run within 40MB.

    DuckDB 1.4's grouped aggregates keep about 100 bytes an account in memory (the setting's documentation
    says so); nothing else may: a window function or a whole-day result would fail this.
    """
    resource = warehouse_at(str(tmp_path / "w.duckdb"), memory_limit="40MB")
    ids = [f"ACC-{n:07d}" for n in range(200_000)]
    with resource.connect() as connection:
        snapshot(connection, DAY, ids)
        for start in range(0, len(ids), 10_000):
            write_results(connection, DAY, "run-1", [success(i) for i in ids[start : start + 10_000]])
        plan = plan_fetch(connection, DAY, full_refresh=True)
        assert (plan.to_fetch, plan.with_etag) == (200_000, 200_000)
        assert sum(len(batch) for batch in iter_fetch_tasks(connection, 5_000)) == 200_000
        assert sum(1 for _ in iter_file_rows(connection, DAY)) == 200_000


def unrated(account_id: str, etag: str = '"u"') -> RatingResult:
    problems = ("overall: null", "environmental: null", "social: null", "governance: null")
    held = RatingValues(None, None, None, None, None, None, date(2026, 11, 19), problems=problems)
    reason = "no usable value: " + "; ".join(problems)
    return RatingResult(account_id, held, ProcessingStatus.FAILED, reason, 1, 200, etag, False, FETCHED)


@pytest.mark.integration
def test_a_held_rating_keeps_why_its_values_are_not_usable(warehouse):
    with warehouse.connect() as connection:
        for day in (date(2026, 11, 19), DAY):
            snapshot(connection, day, ["ACC-1"])
        write_results(connection, date(2026, 11, 19), "run-1", [unrated("ACC-1")])
        plan_fetch(connection, DAY)
        (task,) = [task for batch in iter_fetch_tasks(connection, 10) for task in batch]
    assert task.held.problems == ("overall: null; environmental: null; social: null; governance: null",)


@pytest.mark.integration
def test_a_warehouse_made_before_held_reasons_gains_the_column_and_names_the_unusable_values(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse = warehouse_at(str(path))
    with warehouse.connect() as connection:  # the held_ratings table as it shipped, with one held rating
        connection.execute("DROP TABLE held_ratings")
        connection.execute(
            "CREATE TABLE held_ratings (account_id VARCHAR NOT NULL, partition_date DATE NOT NULL, "
            "etag VARCHAR NOT NULL, overall DECIMAL(5, 2), environmental DECIMAL(5, 2), "
            "social DECIMAL(5, 2), governance DECIMAL(5, 2), primary_focus VARCHAR, "
            "primary_focus_score DECIMAL(5, 2), "
            "analysis_date DATE, fetched_at TIMESTAMPTZ NOT NULL)"
        )
        connection.execute(
            "INSERT INTO held_ratings VALUES ('ACC-1', DATE '2026-11-19', '\"old\"', NULL, NULL, NULL, NULL, "
            "NULL, NULL, DATE '2026-11-19', TIMESTAMPTZ '2026-11-19 11:00:00+00')"
        )
    with warehouse.connect() as connection:
        snapshot(connection, DAY, ["ACC-1"])
        plan_fetch(connection, DAY)
        (task,) = [task for batch in iter_fetch_tasks(connection, 10) for task in batch]
    assert task.etag == '"old"'
    assert task.held.problems[0] == "overall: not usable (reason not kept)"
    assert len(task.held.problems) == 6  # the six values; the analysis date was usable


@pytest.mark.integration
def test_a_spill_to_disk_is_measured_at_its_peak_though_duckdb_lists_it_only_while_it_lasts(tmp_path):
    warehouse = warehouse_at(str(tmp_path / "warehouse.duckdb"), memory_limit="64MB")
    assert warehouse.spill_peak_bytes() == 0
    with warehouse.connect() as connection:
        connection.execute("CREATE TABLE t AS SELECT md5(range::VARCHAR) AS s FROM range(1000000)")
        # A hash join of a million 32-character keys: more than 64MB, so DuckDB spills it.
        assert connection.execute("SELECT count(*) FROM t a JOIN t b USING (s)").fetchone() == (1_000_000,)
        assert connection.execute("SELECT count(*) FROM duckdb_temporary_files()").fetchone() == (0,)
    assert warehouse.spill_peak_bytes() > 16 * 1024 * 1024
    assert not any((tmp_path / "warehouse.duckdb.tmp").glob("*"))  # and it is gone again


@pytest.mark.integration
def test_a_warehouse_made_before_the_resource_figures_gains_their_columns_empty_for_old_runs(tmp_path):
    warehouse = warehouse_at(str(tmp_path / "warehouse.duckdb"))
    with warehouse.connect() as connection:  # run_history as it shipped, with one run
        connection.execute("DROP TABLE run_history")
        connection.execute(
            "CREATE TABLE run_history (partition_date DATE NOT NULL, run_id VARCHAR NOT NULL, "
            "started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ NOT NULL, "
            "duration_seconds DOUBLE NOT NULL, accounts BIGINT NOT NULL, successful BIGINT NOT NULL, "
            "partial BIGINT NOT NULL, failed BIGINT NOT NULL, "
            "api_requests BIGINT NOT NULL, retries BIGINT NOT NULL, throttled BIGINT NOT NULL, "
            "not_modified BIGINT NOT NULL, throughput_per_second DOUBLE NOT NULL)"
        )
        connection.execute(
            "INSERT INTO run_history VALUES "
            "(DATE '2026-11-19', 'old', now(), now(), 1, 1, 1, 0, 0, 1, 0, 0, 0, 1)"
        )
    with warehouse.connect() as connection:
        row = RunHistoryRow(
            DAY, "new", FETCHED, FETCHED, 1.0, 1, 1, 0, 0, 1, 0, 0, 0, 1.0, 2.5, 50 << 20, 1 << 20, 0
        )
        record_run_history(connection, row)
        figures = connection.execute(
            "SELECT run_id, cpu_seconds, peak_rss_bytes, warehouse_size_bytes, spill_bytes FROM run_history "
            "ORDER BY partition_date"
        ).fetchall()
    assert figures == [("old", None, None, None, None), ("new", 2.5, 50 << 20, 1 << 20, 0)]


@pytest.mark.integration
def test_rows_of_an_aborted_walk_are_dropped_and_only_the_complete_walk_makes_the_snapshot(warehouse):
    def page(*rows: tuple[str, str]) -> AmsPage:
        return AmsPage(1, [AccountRow(i, f"Name of {i}", status, FETCHED) for i, status in rows], [])

    with warehouse.connect() as connection:
        writer = SnapshotWriter(connection, DAY)
        writer.stage(page(("ACC-1", "active"), ("ACC-GHOST", "active"), ("ACC-2", "closed")))
        writer.discard_staged()  # the cursor expired: the walk starts again
        writer.stage(page(("ACC-1", "active"), ("ACC-2", "active")))
        counts = writer.replace_snapshot()
        assert list(iter_snapshot_ids(connection, DAY, size=10)) == ["ACC-1", "ACC-2"]
    assert (counts.rows_received, counts.active_accounts, counts.duplicates_dropped) == (2, 2, 0)
