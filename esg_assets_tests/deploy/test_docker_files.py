"""deploy/docker/ and deploy/Dockerfile hold together: the run launcher (dagster.yaml) passes every setting
and secret on, mounts the compose file's volume at the shared path and joins its network, every service runs
the one image, the image carries the target's instance files and extra, and the settings pass the job's
checks.

No Docker here: the compose file is read as YAML (`docker compose config` would need the engine)."""

from __future__ import annotations

import re
import tomllib

import pytest

from esg_assets.core import settings as s
from esg_assets_tests.support.deploy_files import (
    DEPLOY,
    SHARED_MOUNT,
    TARGETS,
    check_settings_values,
    env_file,
    launcher_config,
    secret_names,
    settings_file_problems,
    target_file,
    yaml_file,
)
from esg_assets_tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.unit

DAGSTER_HOME = "/opt/dagster/dagster_home"


def compose() -> dict:
    return yaml_file("docker", "compose.yaml")


def test_the_launcher_passes_exactly_the_settings_and_secrets_files_names_to_runs_and_steps():
    """Every name the daemon has from the two files reaches runs and steps, and no other: the launcher
    refuses to start a run when a name it passes is not set in the daemon."""
    passed = launcher_config("docker")["env_vars"]
    assert all("=" not in name for name in passed)  # names only: values stay in the daemon's environment
    settings = set(env_file(target_file("docker", "esg.env")))
    secrets = set(env_file(target_file("docker", "secrets.env.example")))
    assert secrets == secret_names()
    assert sorted(passed) == sorted(settings | secrets)


def test_the_services_read_the_settings_and_secrets_files():
    job = compose()["services"]
    for service in ("esg-code-server", "esg-dagster-daemon"):
        assert job[service]["env_file"] == ["esg.env", "secrets.env"], service
    assert "secrets.env" in job["esg-dagster-webserver"]["env_file"]  # DAGSTER_PG_URL
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/*/secrets.env" in ignored  # never committed


def test_one_volume_at_the_same_path_in_runs_steps_code_server_and_webserver_and_one_network():
    launcher = launcher_config("docker")
    [volume_key] = compose()["volumes"]
    volume = compose()["volumes"][volume_key]["name"]
    assert f"{volume}:{SHARED_MOUNT}" in launcher["container_kwargs"]["volumes"]
    for service in ("esg-code-server", "esg-dagster-webserver"):
        assert f"{volume_key}:{SHARED_MOUNT}" in compose()["services"][service]["volumes"], service
    [network_key] = compose()["networks"]
    assert launcher["network"] == compose()["networks"][network_key]["name"]
    for name, service in compose()["services"].items():
        assert service["networks"] == [network_key], name
    # The run worker starts the step containers, as the daemon starts the run worker: the host's Docker.
    socket = "/var/run/docker.sock:/var/run/docker.sock"
    assert socket in launcher["container_kwargs"]["volumes"]
    assert socket in compose()["services"]["esg-dagster-daemon"]["volumes"]


def test_every_service_runs_one_image_which_runs_and_steps_take_from_the_code_server():
    services = compose()["services"]
    images = {service["image"] for service in services.values()}
    assert len(images) == 1, images
    code_server = services["esg-code-server"]
    assert code_server["environment"]["DAGSTER_CURRENT_IMAGE"] == code_server["image"]
    assert "image" not in launcher_config("docker")
    for name in ("esg-dagster-daemon", "esg-dagster-webserver"):
        command = services[name]["command"]
        assert command[command.index("--workspace") + 1] == f"{DAGSTER_HOME}/workspace.yaml", name


def test_the_image_carries_each_targets_instance_files_and_extra():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"DAGSTER_HOME={DAGSTER_HOME}" in dockerfile
    assert "COPY deploy/$TARGET/dagster.yaml deploy/$TARGET/workspace.yaml $DAGSTER_HOME/" in dockerfile
    assert 'pip install --no-cache-dir ".[$TARGET]"' in dockerfile
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    packages = {"kubernetes": "dagster-k8s", "docker": "dagster-docker"}
    for target in TARGETS:
        for instance_file in ("dagster.yaml", "workspace.yaml"):
            assert target_file(target, instance_file).is_file(), (target, instance_file)
        names = {re.split(r"[<>=\[]", requirement)[0] for requirement in extras[target]}
        assert {packages[target], "dagster-postgres"} <= names, target
    # The Kubernetes pods mount their instance where the image has it.
    assert launcher_config("kubernetes")["dagster_home"] == DAGSTER_HOME


def test_the_settings_file_is_complete_without_secrets_and_passes_the_jobs_checks(monkeypatch):
    values = env_file(target_file("docker", "esg.env"))
    assert settings_file_problems(values) == []
    check_settings_values(values, monkeypatch)
    shards = int(values[s.SHARDS.name])
    assert int(values[s.RATE_LIMIT_PER_SECOND.name]) // shards >= 1
    assert int(values[s.MAX_IN_FLIGHT.name]) // shards >= 1
