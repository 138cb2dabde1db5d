"""The code location on Kubernetes: each step a Kubernetes Job (deploy/kubernetes/, docs/scaling.md)."""

from dagster_k8s import k8s_job_executor

from esg_assets.config.executor import step_per_process
from esg_assets.definitions import code_location

# The pods, volumes, settings and secrets of each step come from the instance's K8sRunLauncher
# (deploy/kubernetes/dagster.yaml); run config may add to them (deploy/kubernetes/run_config.yaml).
defs = code_location(step_per_process(k8s_job_executor))
