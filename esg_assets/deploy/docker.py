"""The code location on Docker: each step a container of its own (deploy/docker/, docs/scaling.md)."""

from dagster_docker import docker_executor

from esg_assets.config.executor import step_per_process
from esg_assets.definitions import code_location

# The image, network, volume and settings of each step come from the instance's DockerRunLauncher
# (deploy/docker/dagster.yaml); run config may add to them (deploy/docker/run_config.yaml).
defs = code_location(step_per_process(docker_executor))
