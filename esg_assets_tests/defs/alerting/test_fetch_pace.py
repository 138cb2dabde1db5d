"""The pace of a fetch from its progress reports, and the thresholds' settings."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from esg_assets.config.environment import now
from esg_assets.config.resources import alerting
from esg_assets.core import settings
from esg_assets.core.run_metadata import RatingsProgressMetadata
from esg_assets.core.setting_values import setting_problem
from esg_assets.defs.alerting.fetch_pace import (
    DEFAULT_THRESHOLDS,
    current_pace,
    is_fetching,
    pace_over,
    projected_end,
)

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 20, 11, 0, tzinfo=timezone.utc).timestamp()


def report(elapsed: float, done: int, requests: int | None = None, throttled: int = 0, to_fetch: int = 1000):
    return RatingsProgressMetadata(
        run_id="r",
        done=done,
        to_fetch=to_fetch,
        requests=done if requests is None else requests,
        throttled_429=throttled,
        elapsed_seconds=elapsed,
        fetch_started_at=START,
        rate_limit_per_second=10,
    )


def test_a_window_is_judged_only_once_the_fetch_has_run_all_of_it():
    progress = [report(10, 10), report(20, 20)]
    assert pace_over(progress, 30) is None
    pace = pace_over(progress, 20)  # from the fetch's start, which counts as nothing done at 0 s
    assert (pace.seconds, pace.accounts, pace.accounts_per_second) == (20, 20, 1.0)


def test_a_window_starts_at_the_latest_report_at_least_its_length_before_the_last():
    progress = [report(10, 100), report(20, 150), report(30, 160), report(40, 170)]
    pace = pace_over(progress, 25)  # 40 - 25 = 15: the report at 10 s
    assert (pace.seconds, pace.accounts) == (30, 70)


def test_the_share_of_429s_is_of_the_requests_in_the_window():
    progress = [report(10, 90, requests=100, throttled=1), report(20, 180, requests=220, throttled=13)]
    assert pace_over(progress, 10).throttled_share == pytest.approx(12 / 120)


def test_the_current_pace_of_a_young_fetch_is_its_pace_since_it_started():
    assert current_pace([report(10, 30)], 600).accounts_per_second == 3.0


def test_the_projected_end_is_the_last_report_plus_what_is_left_at_the_current_pace():
    progress = [report(10, 10), report(20, 20)]  # 1 a second, 980 left
    assert projected_end(progress, 600).timestamp() == START + 20 + 980


def test_a_fetch_that_fetches_nothing_has_no_projected_end():
    assert projected_end([report(10, 0), report(20, 0)], 600) is None


def test_a_fetch_whose_last_report_has_every_account_is_over():
    assert is_fetching([report(10, 999)]) and not is_fetching([report(10, 999), report(11, 1000)])
    assert not is_fetching([])


def test_the_default_thresholds_are_the_settings_defaults():
    thresholds = alerting(now).pace
    assert thresholds == DEFAULT_THRESHOLDS
    assert (thresholds.throughput_share, thresholds.throughput_seconds) == (0.5, 600)
    assert (thresholds.throttled_share, thresholds.throttled_seconds) == (0.05, 300)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        (settings.DEGRADED_THROTTLED_SHARE, "5%", "a fraction between 0 and 1 (0.05 is 5%)"),
        (settings.DEGRADED_THROUGHPUT_SHARE, "1.5", "a fraction between 0 and 1 (0.05 is 5%)"),
        (settings.DEGRADED_THROUGHPUT_SECONDS, "0", "a whole number from 1 to 14400"),
        (settings.DEGRADED_THROTTLED_SECONDS, "ten", "a whole number from 1 to 14400"),
        (settings.PROJECTION_WARMUP_SECONDS, "-1", "a whole number from 0 to 14400"),
    ],
)
def test_a_bad_threshold_is_refused_naming_the_setting(monkeypatch, setting, value, expected):
    monkeypatch.setenv(setting.name, value)
    with pytest.raises(ValueError) as refused:
        alerting(now)
    assert setting_problem(refused.value).startswith(
        f"Setting {setting.name} must be {expected}, got '{value}'"
    )
