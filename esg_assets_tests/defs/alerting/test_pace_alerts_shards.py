"""projected_late and degraded on a run fetched in several shards, each shard reporting its own progress.

As in test_pace_alerts.py: real runs held STARTED in a Dagster instance, the shards' reports written with the
job's own writer, interleaved in time as their steps would write them, the sensors' logic evaluated at a time
of the test's clock, alerts delivered on loopback and evaluated more than once (once a day per channel).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from dagster import AssetObservation, DagsterInstance, instance_for_test

from esg_assets.core.keys import ESG_RATINGS
from esg_assets.defs.alerting.fetching_runs import fetching_runs, progress_of
from esg_assets.defs.alerting.job_day import at_central, central_day, utc_now
from esg_assets.defs.alerting.sensors.degraded import alert_if_degraded
from esg_assets.defs.alerting.sensors.projected_late import alert_if_projected_late
from esg_assets_tests.support.alert_loopback import ledger_from_env
from esg_assets_tests.support.fetching_run import pace_reports, report_shards, run_in_progress

pytestmark = pytest.mark.integration

# A day whose 09:00 deadline is ahead of the wall clock, so a run made now is one the deadline applies to.
DAY = central_day(utc_now()) + timedelta(days=2)
PARTITION = DAY.isoformat()
RUN_STARTED = at_central(DAY, 5, 0)  # each shard's fetch starts a minute later (pace_reports)
NOW = at_central(DAY, 6, 0)
RATE_LIMIT = 50  # ESG_RATE_LIMIT_PER_SECOND: 25 a second each of two shards


@pytest.fixture
def instance(tmp_path):
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def key(kind: str) -> str:
    return f"esg-{PARTITION}-{kind}"


def shard(run_id: str, number: int, per_second: float, seconds: int, **fetch) -> list:
    """Shard ``number`` of 2's reports: a fetch of 50,000 accounts (unless told) with 25 requests a second."""
    fetch = {"to_fetch": 50_000, "rate_limit": RATE_LIMIT / 2, **fetch}
    return pace_reports(
        run_id,
        run_started_at=RUN_STARTED,
        per_second=per_second,
        seconds=seconds,
        shard=number,
        shards=2,
        **fetch,
    )


def test_one_slow_shard_of_two_pages_projected_late_naming_it(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        report_shards(instance, PARTITION, shard(run_id, 1, 25, 30), shard(run_id, 2, 2, 30))
        assert "not projected yet" in alert_if_projected_late(instance, ledger, NOW)
        report_shards(
            instance, PARTITION, shard(run_id, 1, 25, 120, after=30), shard(run_id, 2, 2, 120, after=30)
        )
        for _ in range(3):
            alert_if_projected_late(instance, ledger, NOW)

    [event] = alert_servers.triggers(key("projected_late"))
    # Together 27 accounts a second would end at 06:02; the merge waits for shard 2: 05:01 + 120 s, then
    # 49,760 accounts at 2 a second, 11:57:40 Central.
    assert event["payload"]["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is projected to end at 11:57 Central, after the 09:00 Central "
        "deadline and the run's 4-hour limit at 09:00 Central; slowest shard 2 of 2: 240 of 50000 accounts "
        "fetched in 2.0 min, 2.0 accounts/s over the last 2.0 min (rate limit 25/s, its share); the run: "
        "3240 of 100000 accounts fetched in 2.0 min, 27.0 accounts/s (rate limit 50/s)"
    )
    details = event["payload"]["custom_details"]
    assert details["projected_end"].startswith(f"{PARTITION}T11:57")
    assert (details["shards"], details["slowest_shard"], details["slowest_shard_accounts_per_second"]) == (
        2,
        2,
        2.0,
    )
    assert (details["accounts_done"], details["accounts_to_fetch"]) == (3240, 100_000)


def test_a_shard_not_started_is_said_so_not_projected(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        report_shards(instance, PARTITION, shard(run_id, 1, 25, 120))  # shard 2's step has not started
        assert alert_if_projected_late(instance, ledger, NOW) == (
            f"{PARTITION}: projected to end at 05:34 Central at the earliest, within its limits; "
            "shard 2 of 2 has not started, so not projected"
        )
        assert alert_if_degraded(instance, ledger, NOW) == (
            f"{PARTITION}: fetch pace within its thresholds; shard 2 of 2 not started"
        )
    slow_day = (DAY - timedelta(days=1)).isoformat()
    with run_in_progress(instance, slow_day) as run_id:
        report_shards(instance, slow_day, shard(run_id, 1, 2, 120))
        alert_if_projected_late(instance, ledger, NOW)
    [event] = alert_servers.triggers(f"esg-{slow_day}-projected_late")
    assert event["payload"]["summary"].endswith(
        "slowest shard 1 of 2: 240 of 50000 accounts fetched in 2.0 min, 2.0 accounts/s over the last "
        "2.0 min (rate limit 25/s, its share); the run: 240 of 50000 accounts of the started shards fetched "
        "in 2.0 min, 2.0 accounts/s (rate limit 50/s); shard 2 of 2 has not started, so not projected"
    )
    assert event["payload"]["custom_details"]["not_projected_shards"] == "2"
    assert alert_servers.triggers(key("projected_late")) == []  # not started alone does not alert


def test_a_shard_whose_fetch_is_over_projects_to_its_end_and_no_longer_counts_for_degraded(
    instance, alert_servers
):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        # Shard 1: 200 accounts at 2 a second, over at 100 s, long before shard 2's 10-minute window.
        report_shards(
            instance,
            PARTITION,
            shard(run_id, 1, 2, 100, to_fetch=200),
            shard(run_id, 2, 24, 900),
        )
        [run] = fetching_runs(instance, [DAY], span_seconds=600)
        assert [(s.shard, s.is_over, s.latest.done) for s in run.shards] == [
            (1, True, 200),
            (2, False, 21_600),
        ]
        assert alert_if_degraded(instance, ledger, NOW) == f"{PARTITION}: fetch pace within its thresholds"
        # Shard 2: 05:01 + 50,000 accounts at 24 a second = 05:35:43; shard 1 ended at 05:02:40.
        assert alert_if_projected_late(instance, ledger, NOW) == (
            f"{PARTITION}: projected to end at 05:35 Central, within its limits"
        )
    assert alert_servers.pagerduty.state.accepted == []


def test_one_throttled_shard_raises_degraded_though_the_run_together_is_under_the_threshold(
    instance, alert_servers
):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        # 8% of shard 2's requests answered 429, none of shard 1's: 4.2% of the run's, under 5%.
        report_shards(
            instance,
            PARTITION,
            shard(run_id, 1, 24, 300),
            shard(run_id, 2, 24, 300, throttled_share=0.08),
        )
        for _ in range(3):
            alert_if_degraded(instance, ledger, NOW)
    [event] = alert_servers.triggers(key("degraded"))
    assert event["payload"]["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is degraded: shard 2 of 2: 626 of 7826 requests (8.0%) "
        "answered 429 over the last 5.0 min, above 5%"
    )
    details = event["payload"]["custom_details"]
    assert (details["degraded_shards"], details["shard_2_throttled_share"]) == ("2", 0.08)
    assert not [name for name in details if name.startswith("shard_1_")]
    assert len(alert_servers.mails(key("degraded"))) == 1


def test_one_slow_shard_raises_degraded_against_its_share_though_the_sum_is_above_half_the_rate(
    instance, alert_servers
):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        # 24 + 10 = 34 accounts a second, above half of 50; shard 2's 10 is below half its 25.
        report_shards(instance, PARTITION, shard(run_id, 1, 24, 600), shard(run_id, 2, 10, 600))
        alert_if_degraded(instance, ledger, NOW)
    [event] = alert_servers.triggers(key("degraded"))
    assert event["payload"]["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is degraded: shard 2 of 2: 10.0 accounts/s over the last "
        "10.0 min, below 50% of its 25/s share of the rate limit"
    )
    details = event["payload"]["custom_details"]
    assert (details["shard_2_accounts_per_second"], details["shard_2_throughput_floor"]) == (10.0, 12.5)
    assert (details["rate_limit_per_second"], details["accounts_done"]) == (50.0, 20_400)


def test_reports_written_before_shards_read_as_one_shard(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        old = pace_reports(
            run_id, run_started_at=RUN_STARTED, to_fetch=100_000, rate_limit=5, per_second=5, seconds=120
        )
        for report in old:
            write_without_shard_fields(instance, report.to_metadata())
        [report] = progress_of(instance, PARTITION, instance.get_run_record_by_id(run_id), 0)[-1:]
        assert (report.shard, report.shards) == (1, 1)
        alert_if_projected_late(instance, ledger, NOW)
    [event] = alert_servers.triggers(key("projected_late"))
    assert "esg_ratings is projected to end at 10:34 Central" in event["payload"]["summary"]
    assert "shard" not in event["payload"]["summary"]


def write_without_shard_fields(instance: DagsterInstance, metadata: dict) -> None:
    """A progress report as esg_ratings wrote it before ESG_SHARDS: no ``shard`` nor ``shards``."""
    old = {name: value for name, value in metadata.items() if name not in ("shard", "shards")}
    instance.report_runless_asset_event(
        AssetObservation(asset_key=ESG_RATINGS, partition=PARTITION, metadata=old)
    )
