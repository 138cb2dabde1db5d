"""deploy/kubernetes/ holds together: every manifest is a valid object of the Kubernetes API, the run
launcher (dagster.yaml) names the ConfigMaps, Secret, service account and volume the manifests create, one
ReadWriteMany volume is mounted at the same path by everything that runs the job's code, and the settings pass
the job's checks.

No cluster here: the manifests are read into the Kubernetes client's own models (dagster-k8s's converter,
which refuses a key the model does not have), as kubectl would send them.
"""

from __future__ import annotations

import kubernetes.client as k8s
import pytest
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

from esg_assets.core import settings as s
from esg_assets_tests.support.deploy_files import (
    SHARED_MOUNT,
    check_settings_values,
    env_file,
    launcher_config,
    secret_names,
    settings_file_problems,
    target_file,
    yaml_documents,
    yaml_file,
)

pytestmark = pytest.mark.unit

MODELS = {
    "ServiceAccount": k8s.V1ServiceAccount,
    "Role": k8s.V1Role,
    "RoleBinding": k8s.V1RoleBinding,
    "PersistentVolumeClaim": k8s.V1PersistentVolumeClaim,
    "Deployment": k8s.V1Deployment,
    "Service": k8s.V1Service,
}
# The Deployments that run the job's code (the code server evaluates the schedule and the sensors).
JOB_CODE = ("esg-code-server",)
# The Deployments that mount the shared volume: the job's code, and the webserver for the steps' logs.
ON_SHARED_VOLUME = (*JOB_CODE, "esg-dagster-webserver")


def manifests() -> list[dict]:
    return yaml_documents("kubernetes", "kubernetes.yaml")


def named(kind: str, name: str) -> dict:
    [found] = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def pod_spec(deployment: str) -> dict:
    return named("Deployment", deployment)["spec"]["template"]["spec"]


def deployments() -> list[str]:
    return [doc["metadata"]["name"] for doc in manifests() if doc["kind"] == "Deployment"]


def test_every_manifest_is_a_valid_kubernetes_object():
    for doc in manifests():
        model = MODELS[doc["kind"]]
        k8s_model_from_dict(model, k8s_snake_case_dict(model, doc))  # raises on a key the API does not have
    assert {doc["kind"] for doc in manifests()} == set(MODELS)


def test_kustomization_applies_the_manifests_and_makes_the_configmaps_the_launcher_names():
    kustomization = yaml_file("kubernetes", "kustomization.yaml")
    launcher = launcher_config("kubernetes")
    assert kustomization["resources"] == ["kubernetes.yaml"]
    assert kustomization["namespace"] == launcher["job_namespace"]
    # The launcher names the ConfigMaps as they are: no hash suffix.
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    generated = {entry["name"]: entry for entry in kustomization["configMapGenerator"]}
    assert generated[launcher["instance_config_map"]]["files"] == ["dagster.yaml", "workspace.yaml"]
    for name in launcher["env_config_maps"]:
        [env] = generated[name]["envs"]
        assert target_file("kubernetes", env).is_file()
    for listed in [*generated[launcher["instance_config_map"]]["files"]]:
        assert target_file("kubernetes", listed).is_file()


def test_the_launchers_service_account_may_create_and_follow_jobs():
    account = launcher_config("kubernetes")["service_account_name"]
    named("ServiceAccount", account)
    binding = named("RoleBinding", account)
    assert {"kind": "ServiceAccount", "name": account} in binding["subjects"]
    role = named("Role", binding["roleRef"]["name"])
    allowed = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("jobs", "create"), ("jobs", "delete"), ("pods", "list"), ("pods/log", "get")} <= allowed
    for deployment in deployments():
        assert pod_spec(deployment)["serviceAccountName"] == account


def test_one_readwritemany_volume_at_the_same_path_in_run_worker_steps_code_server_and_webserver():
    launcher = launcher_config("kubernetes")
    [shared] = [
        volume for volume in launcher["volumes"] if volume.get("persistentVolumeClaim") is not None
    ]
    claim = shared["persistentVolumeClaim"]["claimName"]
    assert named("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    assert {"name": shared["name"], "mountPath": SHARED_MOUNT} in launcher["volume_mounts"]
    for deployment in ON_SHARED_VOLUME:
        spec = pod_spec(deployment)
        volumes = [v for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim]
        assert len(volumes) == 1, f"{deployment} does not mount the claim {claim} (once)"
        [container] = spec["containers"]
        mount = {"name": volumes[0]["name"], "mountPath": SHARED_MOUNT}
        assert mount in container["volumeMounts"], deployment


def test_settings_and_secrets_reach_the_code_server_and_every_run_and_step():
    launcher = launcher_config("kubernetes")
    for deployment in JOB_CODE:
        [container] = pod_spec(deployment)["containers"]
        sources = container["envFrom"]
        assert [{"configMapRef": {"name": name}} for name in launcher["env_config_maps"]] == [
            source for source in sources if "configMapRef" in source
        ]
        assert [{"secretRef": {"name": name}} for name in launcher["env_secrets"]] == [
            source for source in sources if "secretRef" in source
        ]
    # The daemon and the webserver read the instance's database (DAGSTER_PG_URL) from the same Secret.
    for deployment in deployments():
        [container] = pod_spec(deployment)["containers"]
        assert {"secretRef": {"name": launcher["env_secrets"][0]}} in container["envFrom"], deployment


def test_the_secrets_file_lists_every_secret_and_no_value():
    values = env_file(target_file("kubernetes", "secrets.env.example"))
    assert set(values) == secret_names()
    assert set(values.values()) == {""}  # a template: the operator fills in a copy, never committed


def test_every_deployment_mounts_the_instance_at_dagster_home_and_runs_one_image():
    launcher = launcher_config("kubernetes")
    images = set()
    for deployment in deployments():
        spec = pod_spec(deployment)
        [container] = spec["containers"]
        images.add(container["image"])
        [volume] = [v for v in spec["volumes"] if "configMap" in v]
        assert volume["configMap"]["name"] == launcher["instance_config_map"], deployment
        assert {"name": volume["name"], "mountPath": launcher["dagster_home"]} in container["volumeMounts"]
        assert {"name": "DAGSTER_HOME", "value": launcher["dagster_home"]} in container["env"], deployment
        if "--workspace" in container["args"]:
            workspace = container["args"][container["args"].index("--workspace") + 1]
            assert workspace == f"{launcher['dagster_home']}/workspace.yaml", deployment
    assert len(images) == 1, images
    # Runs and steps take the code server's image: the run launcher names none of its own.
    [container] = pod_spec("esg-code-server")["containers"]
    assert {"name": "DAGSTER_CURRENT_IMAGE", "value": container["image"]} in container["env"]
    assert "job_image" not in launcher


def test_the_settings_file_is_complete_without_secrets_and_passes_the_jobs_checks(monkeypatch):
    values = env_file(target_file("kubernetes", "esg.env"))
    assert settings_file_problems(values) == []
    check_settings_values(values, monkeypatch)
    # The budget split: every shard step gets at least one request a second and one in flight.
    shards = int(values[s.SHARDS.name])
    assert int(values[s.RATE_LIMIT_PER_SECOND.name]) // shards >= 1
    assert int(values[s.MAX_IN_FLIGHT.name]) // shards >= 1
