"""The 05:00 America/Chicago schedule asks for today's partition, on ordinary and DST-transition days."""

from datetime import datetime, timezone

import pytest
from dagster import DagsterInstance, build_schedule_context

from esg_assets.definitions import defs
from esg_assets_tests.support.dagster_processes import graphql

# The schedule is built from an asset job, so it is complete only once the code location resolves it.
esg_daily_schedule = defs.resolve_schedule_def("esg_daily_schedule")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("tick_utc", "expected_partition"),
    [
        # 05:00 CST = 11:00 UTC in winter; 05:00 CDT = 10:00 UTC in summer.
        (datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc), "2026-11-24"),
        (datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc), "2026-07-01"),
        # 2026-03-08: clocks spring forward at 02:00, a 23-hour day; 05:00 is already CDT.
        (datetime(2026, 3, 8, 10, 0, tzinfo=timezone.utc), "2026-03-08"),
        # 2026-11-01: clocks fall back at 02:00, a 25-hour day; 05:00 is CST again.
        (datetime(2026, 11, 1, 11, 0, tzinfo=timezone.utc), "2026-11-01"),
    ],
)
def test_tick_requests_todays_partition_with_the_date_as_run_key(tick_utc, expected_partition):
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=tick_utc)
        result = esg_daily_schedule.evaluate_tick(context)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == expected_partition
    assert request.run_key == expected_partition


@pytest.mark.unit
def test_schedule_fires_at_five_central_and_starts_running():
    assert esg_daily_schedule.cron_schedule == "0 5 * * *"
    assert esg_daily_schedule.execution_timezone == "America/Chicago"
    assert esg_daily_schedule.default_status.value == "RUNNING"


# The ticks the scheduler will fire, as the webserver's GraphQL API computes them from the code location.
FUTURE_TICKS = """
query ($cursor: Float!) {
  scheduleOrError(
    scheduleSelector: {
      repositoryLocationName: "esg_assets"
      repositoryName: "__repository__"
      scheduleName: "esg_daily_schedule"
    }
  ) {
    __typename
    ... on Schedule {
      futureTicks(cursor: $cursor, limit: 2) { results { timestamp } }
    }
    ... on PythonError { message }
  }
}
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("day_before_tick_utc", "dst_day_tick_utc", "hours_between"),
    [
        # Spring forward: the 23-hour night between the two 05:00 ticks.
        (
            datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc),
            datetime(2026, 3, 8, 10, 0, tzinfo=timezone.utc),
            23,
        ),
        # Fall back: the 25-hour night.
        (
            datetime(2026, 10, 31, 10, 0, tzinfo=timezone.utc),
            datetime(2026, 11, 1, 11, 0, tzinfo=timezone.utc),
            25,
        ),
    ],
)
def test_dst_days_tick_once_at_five_local(
    dagster_webserver, day_before_tick_utc, dst_day_tick_utc, hours_between
):
    # The schedule's next two ticks after a minute before the first, from a real dagster-webserver (public
    # GraphQL API) serving the project's code location: the same tick times the scheduler daemon uses.
    cursor = day_before_tick_utc.timestamp() - 60
    schedule = graphql(dagster_webserver.url, FUTURE_TICKS, {"cursor": cursor})["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    first, second = (
        datetime.fromtimestamp(tick["timestamp"], timezone.utc) for tick in schedule["futureTicks"]["results"]
    )
    assert first == day_before_tick_utc
    assert second == dst_day_tick_utc
    elapsed = second - first
    assert elapsed.total_seconds() == hours_between * 3600
