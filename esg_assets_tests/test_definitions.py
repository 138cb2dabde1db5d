"""The code location loads, holds what operations expect, and names a missing setting when a run launches."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from esg_assets import settings
from esg_assets.definitions import defs

ASSETS = ["active_accounts", "esg_ratings", "ratings_file", "daily_summary", "run_history"]


def test_code_location_lists_the_five_assets_job_and_schedule():
    repository = defs.get_repository_def()
    assert sorted(key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()) == sorted(ASSETS)
    assert {job.name for job in repository.get_all_jobs()} >= {"esg_daily_job"}
    assert [schedule.name for schedule in repository.schedule_defs] == ["esg_daily_schedule"]


def test_assets_form_one_chain_in_dependency_order():
    graph = defs.get_repository_def().asset_graph
    for upstream, downstream in zip(ASSETS, ASSETS[1:]):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


def test_daily_job_carries_the_four_hour_runtime_limit():
    job = defs.resolve_job_def("esg_daily_job")
    assert job.tags["dagster/max_runtime"] == str(4 * 60 * 60)
    assert job.partitions_def.timezone == "America/Chicago"


@pytest.mark.parametrize("missing", [s.name for s in settings.ALL_SETTINGS if s.required])
def test_a_missing_required_setting_fails_the_run_naming_it(monkeypatch, tmp_path, missing):
    for setting in settings.ALL_SETTINGS:
        monkeypatch.setenv(setting.name, setting.default or f"http://127.0.0.1:9/{setting.name.lower()}")
    monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv(missing)
    from esg_assets.assets.active_accounts import active_accounts
    from esg_assets.resources.from_env import resources_from_env

    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [active_accounts],
            partition_key="2026-11-24",
            resources=resources_from_env(),
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_run_failure_event() or next(e for e in result.all_events if e.is_failure)
    assert missing in str(failure.event_specific_data.error)
