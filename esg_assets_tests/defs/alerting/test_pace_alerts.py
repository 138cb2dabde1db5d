"""projected_late and degraded on real runs in a Dagster instance, driven by a clock, delivered on loopback.

Each run stays STARTED while the test writes the progress reports its fetch would write (with the job's own
writer) and evaluates the sensors' logic at a time of its choosing: "the fetch has run 9 minutes" is a value
in the test, not a wait. Every alert is evaluated more than once: it must reach each channel once a day.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from dagster import DagsterInstance, instance_for_test, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.defs.alerting.alert_kinds import DEGRADED, PROJECTED_LATE
from esg_assets.defs.alerting.fetching_runs import progress_of
from esg_assets.defs.alerting.job_day import at_central, central_day, utc_now
from esg_assets.defs.alerting.sensors.degraded import alert_if_degraded
from esg_assets.defs.alerting.sensors.projected_late import alert_if_projected_late
from esg_assets.defs.alerting.sensors.resolve import resolve_recovered_days
from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.daily_ratings.fetch_progress import report_progress
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.alert_loopback import (
    DEV,
    assert_plain_for_the_business,
    dev_and_business_mails,
    ledger_from_env,
    plain_text,
    sensor_resources,
)
from esg_assets_tests.support.fetching_run import publish_day, report_pace, run_in_progress

pytestmark = pytest.mark.integration

# A day whose 09:00 deadline is ahead of the wall clock, so a run made now is one the deadline applies to.
DAY = central_day(utc_now()) + timedelta(days=2)
PARTITION = DAY.isoformat()
RUN_STARTED = at_central(DAY, 5, 0)  # the fetch starts a minute later (report_pace)
NOW = at_central(DAY, 6, 0)


@pytest.fixture
def instance(tmp_path):
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def key(kind: str, partition: str = PARTITION) -> str:
    return f"esg-{partition}-{kind}"


def pace(instance: DagsterInstance, run_id: str, partition: str = PARTITION, **fetch) -> None:
    fetch = {"run_started_at": RUN_STARTED, "to_fetch": 100_000, **fetch}
    report_pace(instance, partition, run_id, **fetch)


# --- projected_late -----------------------------------------------------------------------------------------


def test_a_day_projected_late_alerts_once_with_the_projection_and_the_throughput(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        # 100,000 accounts at 5 a second: about five and a half hours of fetching.
        pace(instance, run_id, rate_limit=5, per_second=5, seconds=30)
        assert "not projected yet" in alert_if_projected_late(instance, ledger, NOW)  # the first minute
        pace(instance, run_id, rate_limit=5, per_second=5, seconds=120, after=30)
        for _ in range(3):
            alert_if_projected_late(instance, ledger, NOW)

    [event] = alert_servers.triggers(key("projected_late"))
    payload = event["payload"]
    # 05:01 + 120 s, then 99,400 accounts at 5 a second: 10:34:20 Central.
    assert payload["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is projected to end at 10:34 Central, after the 09:00 Central "
        "deadline and the run's 4-hour limit at 09:00 Central; 600 of 100000 accounts fetched in 2.0 min, "
        "5.0 accounts/s over the last 2.0 min (rate limit 5/s)"
    )
    assert payload["severity"] == "warning"
    details = payload["custom_details"]
    assert details["projected_end"].startswith(f"{PARTITION}T10:34")
    assert details["accounts_per_second"] == 5.0 and details["run_id"] == run_id
    dev, business = dev_and_business_mails(alert_servers, key("projected_late"))
    assert PROJECTED_LATE.runbook_step in plain_text(dev)
    assert_plain_for_the_business(business, run_id)
    assert "would finish after its deadline, so the file may be late" in plain_text(business)


def test_a_fetch_on_course_does_not_alert(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=50, seconds=300)  # ends at 05:34
        outcome = alert_if_projected_late(instance, ledger, NOW)
    assert "projected to end at 05:34 Central, within its limits" in outcome
    assert alert_servers.pagerduty.state.accepted == []


def test_the_runs_own_runtime_limit_counts_when_it_comes_before_the_deadline(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION, tags={"dagster/max_runtime": "1800"}) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=50, seconds=300)  # ends at 05:34, limit 05:30
        alert_if_projected_late(instance, ledger, NOW)
    [event] = alert_servers.triggers(key("projected_late"))
    assert (
        "projected to end at 05:34 Central, after the run's 1800-second limit at 05:30 Central;"
        in (event["payload"]["summary"])
    )
    assert "deadline" not in event["payload"]["summary"]


def test_a_rerun_made_after_the_deadline_is_held_to_its_runtime_limit_only(instance, alert_servers):
    ledger = ledger_from_env(instance)
    yesterday = central_day(utc_now()) - timedelta(days=1)  # its deadline passed before this run was made
    started = at_central(yesterday, 10, 0)
    with run_in_progress(instance, yesterday.isoformat()) as run_id:
        pace(
            instance,
            run_id,
            yesterday.isoformat(),
            run_started_at=started,
            rate_limit=5,
            per_second=5,
            seconds=120,
        )
        alert_if_projected_late(instance, ledger, at_central(yesterday, 10, 5))
    [event] = alert_servers.triggers(key("projected_late", yesterday.isoformat()))
    assert "after the run's 4-hour limit at 14:00 Central;" in event["payload"]["summary"]
    assert "deadline" not in event["payload"]["summary"]


def test_a_run_whose_runtime_limit_monitoring_cannot_read_has_none(instance, alert_servers):
    ledger = ledger_from_env(instance)
    yesterday = central_day(utc_now()) - timedelta(days=1)
    with run_in_progress(instance, yesterday.isoformat(), tags={"dagster/max_runtime": "4h"}) as run_id:
        pace(instance, run_id, yesterday.isoformat(), rate_limit=5, per_second=0, seconds=120)
        outcome = alert_if_projected_late(instance, ledger, at_central(yesterday, 10, 5))
    assert "no deadline or runtime limit applies" in outcome
    assert alert_servers.pagerduty.state.accepted == []


def test_a_fetch_that_fetches_nothing_is_projected_late(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=0, seconds=120)
        alert_if_projected_late(instance, ledger, NOW)
    [event] = alert_servers.triggers(key("projected_late"))
    assert (
        "esg_ratings is fetching nothing: at this pace it would not end before the 09:00"
        in (event["payload"]["summary"])
    )
    assert event["payload"]["custom_details"]["projected_end"] == "never"


def test_a_fetch_that_is_over_is_not_projected(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        last = report_pace(
            instance, PARTITION, run_id, run_started_at=RUN_STARTED, to_fetch=100_000, rate_limit=50,
            per_second=1, seconds=600,
        )  # fmt: skip
        # esg_ratings's last report: every account done (the run goes on to write the file).
        report_progress(
            instance, PARTITION, RatingsProgressMetadata(**{**last.to_metadata(), "done": 100_000})
        )
        assert alert_if_projected_late(instance, ledger, NOW) == "no run of a recent day is fetching"
        assert alert_if_degraded(instance, ledger, NOW) == "no run of a recent day is fetching"
    assert alert_servers.pagerduty.state.accepted == []


# --- degraded -----------------------------------------------------------------------------------------------


def test_throughput_below_half_the_rate_for_10_minutes_alerts_degraded_and_9_minutes_does_not(
    instance, alert_servers
):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=20, seconds=540)  # 20 a second: below 25
        assert "within its thresholds" in alert_if_degraded(instance, ledger, NOW)
        pace(instance, run_id, rate_limit=50, per_second=20, seconds=600, after=540)
        for _ in range(3):
            alert_if_degraded(instance, ledger, NOW)

    [event] = alert_servers.triggers(key("degraded"))
    assert event["payload"]["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is degraded: 20.0 accounts/s over the last 10.0 min, "
        "below 50% of the 50/s rate limit"
    )
    assert event["payload"]["severity"] == "warning"
    details = event["payload"]["custom_details"]
    assert (details["accounts_per_second"], details["throughput_floor"]) == (20.0, 25.0)
    [mail] = alert_servers.mails(key("degraded"))
    assert mail.recipients == [DEV]  # the development team's, not the business's
    assert DEGRADED.runbook_step in plain_text(mail)


def test_429s_above_5_percent_over_5_minutes_alert_degraded_and_4_percent_do_not(instance, alert_servers):
    ledger = ledger_from_env(instance)
    calm_day = DAY - timedelta(days=1)
    with run_in_progress(instance, calm_day.isoformat()) as run_id:
        pace(
            instance,
            run_id,
            calm_day.isoformat(),
            rate_limit=50,
            per_second=45,
            seconds=300,
            throttled_share=0.04,
        )
        assert "within its thresholds" in alert_if_degraded(instance, ledger, NOW)
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=45, seconds=290, throttled_share=0.06)
        assert "within its thresholds" in alert_if_degraded(instance, ledger, NOW)  # under 5 minutes
        pace(instance, run_id, rate_limit=50, per_second=45, seconds=300, after=290, throttled_share=0.06)
        alert_if_degraded(instance, ledger, NOW)
    [event] = alert_servers.triggers()
    assert event["dedup_key"] == key("degraded")
    assert event["payload"]["summary"] == (
        f"ESG ratings {PARTITION}: esg_ratings is degraded: 862 of 14362 requests (6.0%) answered 429 "
        "over the last 5.0 min, above 5%"
    )
    assert event["payload"]["custom_details"]["throttled_share"] == 0.06


def test_shorter_windows_from_the_settings(instance, alert_servers, monkeypatch):
    monkeypatch.setenv("ESG_DEGRADED_THROUGHPUT_SECONDS", "60")
    monkeypatch.setenv("ESG_DEGRADED_THROUGHPUT_SHARE", "0.9")
    thresholds = sensor_resources()["alerting"].pace
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=40, seconds=60)  # 80% of the rate, for a minute
        alert_if_degraded(instance, ledger_from_env(instance), NOW, thresholds)
    [event] = alert_servers.triggers(key("degraded"))
    assert (
        "40.0 accounts/s over the last 1.0 min, below 90% of the 50/s rate limit"
        in event["payload"]["summary"]
    )


# --- resolve ------------------------------------------------------------------------------------------------


def test_publishing_the_days_file_resolves_projected_late_and_degraded(instance, alert_servers):
    ledger = ledger_from_env(instance)
    with run_in_progress(instance, PARTITION) as run_id:
        pace(instance, run_id, rate_limit=50, per_second=5, seconds=600)
        alert_if_projected_late(instance, ledger, NOW)
        alert_if_degraded(instance, ledger, NOW)
    assert alert_servers.open_incidents() == {key("projected_late"), key("degraded")}

    resolve_recovered_days(instance, ledger, NOW)  # the fetch ended, but no file is published yet
    assert alert_servers.open_incidents() == {key("projected_late"), key("degraded")}

    publish_day(instance, PARTITION)
    for _ in range(2):
        resolve_recovered_days(instance, ledger, NOW)
    assert alert_servers.open_incidents() == set()
    assert len(alert_servers.resolves()) == 2


# --- real runs against the sandbox --------------------------------------------------------------------------


def evaluate_while_running(instance: DagsterInstance, partition: str, evaluate, tags: dict | None = None):
    """Runs ``partition``'s active_accounts and esg_ratings against the sandbox in a thread, calling
    ``evaluate(now)`` every half second as a sensor would, until the run ends; returns the run's result."""
    outcome = {}

    def run() -> None:
        outcome["result"] = materialize(
            [active_accounts, esg_ratings],
            partition_key=partition,
            resources=dagster_resources(),
            instance=instance,
            tags=tags,
        )

    runner = threading.Thread(target=run)
    runner.start()
    while runner.is_alive():
        evaluate(utc_now())
        runner.join(0.5)
    return outcome["result"]


def test_a_real_run_projected_past_its_short_limit_pages_projected_late(
    instance, alert_servers, job_environment, monkeypatch
):
    monkeypatch.setenv("ESG_PROJECTION_WARMUP_SECONDS", "0")
    # Yesterday's day: its 09:00 deadline passed before this run was made, so the run's own limit is the
    # only one, whatever the hour (today's deadline would join it in the message when run near 09:00 Central).
    day = (central_day(utc_now()) - timedelta(days=1)).isoformat()
    # 100 accounts at 4 a second: a fetch of about 25 s, in a run allowed 15 s.
    with SandboxServer(SandboxConfig(accounts=100, seed=3, rate_limit=4, ams_noise=False)) as sandbox:
        job_environment(sandbox)
        alerting = sensor_resources()["alerting"]
        ledger = alerting.ledger(instance)
        result = evaluate_while_running(
            instance,
            day,
            lambda now: alert_if_projected_late(instance, ledger, now, alerting.window, alerting.pace),
            tags={"dagster/max_runtime": "15"},
        )
    assert result.success
    [event] = alert_servers.triggers(key("projected_late", day))
    summary = event["payload"]["summary"]
    assert re.search(
        r"esg_ratings is projected to end at \d\d:\d\d Central, after the run's 15-second limit", summary
    )
    assert re.search(r"accounts/s over the last [\d.]+ min \(rate limit 4/s\)", summary)
    assert event["payload"]["custom_details"]["run_id"] == result.run_id


def test_a_throttled_sandbox_raises_degraded(instance, alert_servers, job_environment, monkeypatch):
    monkeypatch.setenv("ESG_DEGRADED_THROUGHPUT_SECONDS", "10")
    monkeypatch.setenv("ESG_DEGRADED_THROTTLED_SECONDS", "10")
    today = central_day(utc_now()).isoformat()
    # The API allows 4 requests a second; the job is configured for 20.
    with SandboxServer(SandboxConfig(accounts=80, seed=3, rate_limit=4, ams_noise=False)) as sandbox:
        job_environment(sandbox, ESG_RATE_LIMIT_PER_SECOND="20")
        alerting = sensor_resources()["alerting"]
        ledger = alerting.ledger(instance)
        result = evaluate_while_running(
            instance, today, lambda now: alert_if_degraded(instance, ledger, now, alerting.pace)
        )
    # What esg_ratings reported while it fetched: every 10 s, then once more when the fetch was over.
    reports = progress_of(instance, today, instance.get_run_record_by_id(result.run_id), span_seconds=3600)
    assert len(reports) >= 2 and all(report.run_id == result.run_id for report in reports)
    assert (reports[-1].done, reports[-1].to_fetch, reports[-1].rate_limit_per_second) == (80, 80, 20.0)
    assert reports[0].elapsed_seconds >= 10 and reports[0].done < 80
    assert reports[-1].requests > 80 and reports[-1].throttled_429 > 0  # the sandbox allows 4 a second
    [event] = alert_servers.triggers(key("degraded", today))
    summary = event["payload"]["summary"]
    assert "esg_ratings is degraded: " in summary
    assert "below 50% of the 20/s rate limit" in summary or "answered 429" in summary
    [mail] = alert_servers.mails(key("degraded", today))
    assert mail.recipients == [DEV]


def test_a_run_of_a_day_older_than_the_lookback_is_not_watched(instance, alert_servers):
    old_day = DAY - timedelta(days=7)  # NOW's day and the 6 before it are watched
    with run_in_progress(instance, old_day.isoformat()) as run_id:
        pace(instance, run_id, old_day.isoformat(), rate_limit=50, per_second=1, seconds=600)
        assert alert_if_projected_late(instance, ledger_from_env(instance), NOW) == (
            "no run of a recent day is fetching"
        )
        assert (
            alert_if_degraded(instance, ledger_from_env(instance), NOW)
            == "no run of a recent day is fetching"
        )
    assert alert_servers.pagerduty.state.accepted == []
