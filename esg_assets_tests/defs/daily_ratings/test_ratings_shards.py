"""The shards' shares of the API's limits: together never more than the firm's budget."""

import pytest
from dagster import build_resources, in_process_executor

from esg_assets.config.executor import daily_executor
from esg_assets.config.resources import dagster_resources
from esg_assets.core.setting_values import BadSettingError
from esg_assets.defs.daily_ratings.ratings_shards import MAX_SHARDS, RatingsShardsResource, Shard

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
@pytest.mark.parametrize(("rate", "in_flight"), [(50, 16), (500, 64), (7, 16), (2_000, 128)])
def test_the_shards_shares_add_up_to_at_most_the_budget(count, rate, in_flight):
    shards = RatingsShardsResource(shards=count).of_day()
    assert [shard.index for shard in shards] == list(range(count))
    assert sum(shard.rate_share(rate) for shard in shards) <= rate * (1 + 1e-12)
    assert sum(shard.rate_share(rate) for shard in shards) >= rate * (1 - 1e-12)  # and use all of it
    assert sum(shard.in_flight_share(in_flight) for shard in shards) <= in_flight
    assert all(shard.in_flight_share(in_flight) >= 1 for shard in shards)


def test_a_shard_is_named_the_same_in_logs_stores_and_dagster():
    shard = Shard(index=1, count=4)
    assert (shard.label, shard.mapping_key) == ("2-of-4", "shard_2_of_4")


@pytest.mark.parametrize("value", [0, -1, MAX_SHARDS + 1, "two", ""])
def test_a_shard_count_out_of_range_is_refused_naming_the_setting(value):
    with pytest.raises(ValueError, match="ESG_SHARDS must be a whole number from 1 to 64"):
        RatingsShardsResource(shards=value)


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_the_code_location_refuses_a_bad_shard_count_before_it_picks_an_executor(value, monkeypatch):
    monkeypatch.setenv("ESG_SHARDS", value)
    with pytest.raises(BadSettingError, match="ESG_SHARDS must be a whole number from 1 to 64"):
        daily_executor()


def test_one_shard_runs_in_one_process_and_more_in_a_process_per_step_under_the_day_lock(monkeypatch):
    monkeypatch.setenv("ESG_SHARDS", "1")
    assert daily_executor() is in_process_executor
    monkeypatch.setenv("ESG_SHARDS", "3")
    executor = daily_executor()
    assert executor.name == "multiprocess" and "holds the day's lock" in executor.description


@pytest.mark.parametrize(
    ("value", "shards"),
    [
        ("2 ", 2),
        ("+2", 2),
        (" 2\n", 2),
        ("02", 2),
        ("", 1),
        ("0x2", None),
        ("1e1", None),
        ("2.0", None),
        ("65", None),
        ("-1", None),
        ("0", None),
        ("1_0", None),
        ("\u0662", None),
        ("２", None),
    ],
)
def test_a_hostile_shard_count_is_the_number_it_clearly_is_or_refused_at_load_and_at_launch(
    value, shards, monkeypatch
):
    # At definitions load (every process that loads the code location: code server, run worker, each step's
    # process) the executor is picked from ESG_SHARDS; at launch Dagster resolves the resource's EnvVar.
    monkeypatch.setenv("ESG_SHARDS", value)
    if shards is None:
        with pytest.raises(
            BadSettingError, match=r"Setting ESG_SHARDS must be a whole number from 1 to 64, got"
        ):
            daily_executor()
        return
    assert daily_executor().name == ("in_process" if shards == 1 else "multiprocess")
    with build_resources({"ratings_shards": dagster_resources()["ratings_shards"]}) as resources:
        assert len(resources.ratings_shards.of_day()) == shards
