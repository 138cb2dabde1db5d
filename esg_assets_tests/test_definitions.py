"""The code location loads, holds what operations expect, and names a missing setting when a run launches."""

import pytest
from dagster import AssetKey, DagsterInstance, DagsterInvalidConfigError, asset, materialize

from esg_assets.core import settings
from esg_assets.core.keys import PARTITION_TAG
from esg_assets.core.partitions import daily_partitions
from esg_assets.definitions import defs

ASSETS = ["active_accounts", "esg_ratings", "ratings_file", "daily_summary", "run_history"]


@pytest.mark.unit
def test_code_location_lists_the_five_assets_job_and_schedule():
    repository = defs.get_repository_def()
    assert sorted(key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()) == sorted(
        ASSETS
    )
    daily_job = defs.resolve_job_def("esg_daily_job")
    assert sorted(key.to_user_string() for key in daily_job.asset_layer.executable_asset_keys) == sorted(
        ASSETS
    )
    assert {job.name for job in repository.get_all_jobs()} >= {"esg_daily_job", "retention_job"}
    assert sorted(schedule.name for schedule in repository.schedule_defs) == [
        "esg_daily_schedule",
        "retention_schedule",
    ]


@pytest.mark.unit
def test_assets_form_one_chain_in_dependency_order():
    graph = defs.get_repository_def().asset_graph
    for upstream, downstream in zip(ASSETS, ASSETS[1:]):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


@pytest.mark.integration
def test_the_partition_tag_is_the_one_dagster_puts_on_a_partitions_runs():
    @asset(partitions_def=daily_partitions)
    def one_day() -> None:
        return None

    with DagsterInstance.ephemeral() as instance:
        result = materialize([one_day], partition_key="2026-11-20", instance=instance)
        assert instance.get_run_by_id(result.run_id).tags[PARTITION_TAG] == "2026-11-20"


@pytest.mark.unit
def test_daily_job_carries_the_four_hour_runtime_limit():
    job = defs.resolve_job_def("esg_daily_job")
    assert job.tags["dagster/max_runtime"] == str(4 * 60 * 60)
    assert job.partitions_def.timezone == "America/Chicago"


@pytest.mark.integration
@pytest.mark.parametrize("missing", [s.name for s in settings.ALL_SETTINGS if s.required])
def test_a_missing_required_setting_fails_the_run_naming_it(monkeypatch, tmp_path, missing):
    for setting in settings.ALL_SETTINGS:
        monkeypatch.setenv(
            setting.name,
            setting.default if setting.default is not None else f"http://127.0.0.1:9/{setting.name.lower()}",
        )
    monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv(missing)
    from esg_assets.config.resources import dagster_resources

    # Dagster resolves EnvVars when the run is launched: the run is refused before any step starts.
    with DagsterInstance.ephemeral() as instance, pytest.raises(DagsterInvalidConfigError, match=missing):
        materialize(defs.assets, partition_key="2026-11-20", resources=dagster_resources(), instance=instance)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("ESG_RATE_LIMIT_PER_SECOND", "0", "ESG_RATE_LIMIT_PER_SECOND must be a positive whole number"),
        ("ESG_MAX_IN_FLIGHT", "-3", "ESG_MAX_IN_FLIGHT must be a positive whole number"),
        ("ESG_API_BASE_URL", "esg.example.com", "ESG_API_BASE_URL must be an http(s) URL"),
        ("ESG_MAX_FAILURE_RATE", "5%", "ESG_MAX_FAILURE_RATE must be a fraction"),
    ],
)
def test_a_bad_setting_fails_the_run_at_launch_naming_it(monkeypatch, tmp_path, setting, value, message):
    for each in settings.ALL_SETTINGS:
        monkeypatch.setenv(
            each.name, each.default if each.default is not None else f"http://127.0.0.1:9/{each.name.lower()}"
        )
    monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv(setting, value)
    from esg_assets.config.resources import dagster_resources
    from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings

    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [esg_ratings], partition_key="2026-11-20", resources=dagster_resources(), instance=instance,
            raise_on_error=False,
        )  # fmt: skip
    assert not result.success
    assert message in str(result.get_run_failure_event().event_specific_data.error)
