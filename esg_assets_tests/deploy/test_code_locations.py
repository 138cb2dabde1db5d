"""Each deployment's code location: every job on its executor with the run worker holding the day's lock, and
the location loads as Dagster loads it, from the module and from the code server its workspace names."""

from __future__ import annotations

import importlib
import subprocess
import time

import pytest
import yaml
from dagster_docker import docker_executor
from dagster_k8s import k8s_job_executor

from esg_assets.defs.daily_ratings import day_locked_executor
from esg_assets_tests.support.dagster_processes import BIN
from esg_assets_tests.support.deploy_files import (
    TARGETS,
    code_server_module,
    with_option,
    yaml_documents,
    yaml_file,
)
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.ports import free_port

INNER = {"k8s": k8s_job_executor, "docker": docker_executor}
LOAD_SECONDS = 300  # an upper bound for a slow, busy machine, never a measure of speed


def code_server_args(target: str) -> list[str]:
    """The code server's command as the target's files start it."""
    if target == "kubernetes":
        [deployment] = [
            doc
            for doc in yaml_documents("kubernetes", "kubernetes.yaml")
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "esg-code-server"
        ]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        return container["args"]
    return yaml_file("docker", "compose.yaml")["services"]["esg-code-server"]["command"]


@pytest.mark.unit
@pytest.mark.parametrize("target", TARGETS)
def test_every_job_runs_on_the_targets_executor_with_the_day_lock(target):
    module, executor_name = TARGETS[target]
    defs = importlib.import_module(module).defs
    jobs = list(defs.get_repository_def().get_all_jobs())
    assert {job.name for job in jobs} >= {"esg_daily_job", "retention_job"}
    for job in jobs:
        executor = job.executor_def
        assert executor.name == executor_name, job.name
        # day_locked wraps it: the run worker takes the day's lock, then runs the inner executor
        assert executor.executor_creation_fn.__module__ == day_locked_executor.__name__, job.name
        assert executor.config_schema is INNER[executor_name].config_schema, job.name


@pytest.mark.unit
@pytest.mark.parametrize("target", TARGETS)
def test_the_code_server_of_the_targets_files_serves_its_module(target):
    assert code_server_module(code_server_args(target)) == TARGETS[target][0]


def code_server_address(target: str) -> tuple[str, int]:
    """Where the webserver and the daemon reach the code server: the Service, or the compose service."""
    if target == "kubernetes":
        [service] = [
            doc
            for doc in yaml_documents("kubernetes", "kubernetes.yaml")
            if doc["kind"] == "Service" and doc["spec"]["selector"] == {"app": "esg-code-server"}
        ]
        [port] = service["spec"]["ports"]
        assert port["targetPort"] == int(option_value(code_server_args(target), "--port"))
        return service["metadata"]["name"], port["port"]
    assert "esg-code-server" in yaml_file("docker", "compose.yaml")["services"]
    return "esg-code-server", int(option_value(code_server_args(target), "--port"))


def option_value(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


@pytest.mark.unit
@pytest.mark.parametrize("target", TARGETS)
def test_the_workspace_names_the_code_servers_address_and_the_location(target):
    [entry] = yaml_file(target, "workspace.yaml")["load_from"]
    server = entry["grpc_server"]
    assert (server["host"], server["port"]) == code_server_address(target)
    # The name of the one-machine install (workspace.yaml at the top): the same location, wherever it runs.
    [local] = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"]
    assert server["location_name"] == local["python_module"]["location_name"]


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS)
def test_dagster_definitions_validate_passes_on_the_module(target, tmp_path):
    module = TARGETS[target][0]
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", module],
        cwd=tmp_path,  # the installed package, not the working directory, is what a pod loads
        capture_output=True,
        text=True,
        timeout=LOAD_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Validation successful for code location {module}" in result.stderr + result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS)
def test_the_workspace_loads_the_location_from_the_targets_code_server(target, tmp_path):
    """The code server started with the target's own arguments (on loopback), and `dagster definitions
    validate` on the target's workspace.yaml with the server's host name pointed at it."""
    port = free_port()
    args = with_option(with_option(code_server_args(target), "--host", "127.0.0.1"), "--port", str(port))
    workspace = yaml_file(target, "workspace.yaml")
    [entry] = workspace["load_from"]
    entry["grpc_server"].update(host="127.0.0.1", port=port)
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    log = (tmp_path / "code-server.log").open("w")
    code_server = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while True:
            result = subprocess.run(
                [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=LOAD_SECONDS,
            )
            output = result.stdout + result.stderr
            if result.returncode == 0 or time.monotonic() > deadline or code_server.poll() is not None:
                break
            time.sleep(2)  # the code server is still importing the location
        assert result.returncode == 0, output + (tmp_path / "code-server.log").read_text()
        assert "Validation successful for code location esg_assets" in output
    finally:
        code_server.terminate()
        code_server.wait(timeout=30)
        log.close()
