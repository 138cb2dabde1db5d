"""The run config each deployment ships (deploy/<target>/run_config.yaml) validates against the daily job of
its code location, with the target's settings in the environment; a key its executor does not have fails."""

from __future__ import annotations

import importlib

import pytest
from dagster import DagsterInvalidConfigError, validate_run_config

from esg_assets_tests.support.deploy_files import (
    TARGETS,
    check_settings_values,
    env_file,
    target_file,
    yaml_file,
)

pytestmark = pytest.mark.unit


def daily_job(target: str):
    """The daily job as a pod or container of the target loads it: imported in the target's environment (the
    code location reads which settings are set when it is loaded, e.g. KMS instead of a key file)."""
    module = importlib.reload(importlib.import_module(TARGETS[target][0]))
    return module.defs.resolve_job_def("esg_daily_job")


@pytest.mark.parametrize("target", TARGETS)
def test_the_shipped_run_config_validates_against_the_daily_job(target, monkeypatch):
    check_settings_values(env_file(target_file(target, "esg.env")), monkeypatch)
    run_config = yaml_file(target, "run_config.yaml")
    job = daily_job(target)
    resolved = validate_run_config(job, run_config)
    executor = resolved["execution"][job.executor_def.name]
    assert executor["max_concurrent"] == run_config["execution"]["config"]["max_concurrent"]
    # Per-step settings name ops of the job: a renamed op would silently lose them.
    ops = {node.name for node in job.graph.iterate_op_defs()}
    assert set(executor.get("per_step_k8s_config", {})) <= ops


@pytest.mark.parametrize("target", TARGETS)
def test_a_key_the_executor_does_not_have_is_refused(target, monkeypatch):
    """The check above can fail: the same file with a misspelt executor key does not validate."""
    check_settings_values(env_file(target_file(target, "esg.env")), monkeypatch)
    run_config = yaml_file(target, "run_config.yaml")
    executor = run_config["execution"]["config"]
    executor["max_concurent"] = executor.pop("max_concurrent")
    with pytest.raises(DagsterInvalidConfigError, match="max_concurent"):
        validate_run_config(daily_job(target), run_config)
