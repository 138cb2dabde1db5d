"""The files an operator deploys (deploy/<target>/ at the repo's top), read as the tests of
esg_assets_tests/deploy/ check them: YAML documents, env files, the instance's run launcher config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from esg_assets_tests.support.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
# Each target: its folder under deploy/, its code location module, the name of its executor.
TARGETS = {
    "kubernetes": ("esg_assets.deploy.kubernetes", "k8s"),
    "docker": ("esg_assets.deploy.docker", "docker"),
}
SHARED_MOUNT = "/var/lib/esg"  # where every process of the job sees the shared volume
# Variables of a settings file that are not the job's settings but the AWS SDK's.
AWS_VARIABLES = ("AWS_REGION",)


def target_file(target: str, name: str) -> Path:
    return DEPLOY / target / name


def yaml_file(target: str, name: str) -> Any:
    """The one YAML document of deploy/<target>/<name>."""
    return yaml.safe_load(target_file(target, name).read_text())


def yaml_documents(target: str, name: str) -> list[dict]:
    """Every YAML document of a multi-document file (Kubernetes manifests)."""
    return [doc for doc in yaml.safe_load_all(target_file(target, name).read_text()) if doc]


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped); a repeated name is an error."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"{path}:{number}: not NAME=value: {line!r}"
        assert name not in values, f"{path}:{number}: {name} set twice"
        values[name] = value
    return values


def secret_names() -> set[str]:
    """What secrets.env must hold: the job's secret settings and the instance's database URL."""
    from esg_assets.core import settings as s

    return {setting.name for setting in s.ALL_SETTINGS if setting.secret} | {"DAGSTER_PG_URL"}


def launcher_config(target: str) -> dict:
    """The ``run_launcher: config:`` block of deploy/<target>/dagster.yaml."""
    return yaml_file(target, "dagster.yaml")["run_launcher"]["config"]


def code_server_module(args: list[str]) -> str:
    """The module a ``dagster api grpc ... --module-name M`` command serves."""
    assert args[:3] == ["dagster", "api", "grpc"], args
    return args[args.index("--module-name") + 1]


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced (the code server's host and port, made local)."""
    changed = list(args)
    changed[changed.index(option) + 1] = value
    return changed


def settings_file_problems(values: dict[str, str]) -> list[str]:
    """What is wrong with a target's esg.env as the job's settings (empty: nothing): an unknown name (a typo
    the job would ignore), a secret in it (secrets go to the Secret or secrets.env), a required setting
    missing (the key file may be left out when KMS encrypts), an output outside S3 or state off the shared
    volume."""
    from esg_assets.core import settings as s

    known = {setting.name: setting for setting in s.ALL_SETTINGS}
    unknown = [name for name in values if name not in known and name not in AWS_VARIABLES]
    problems = [f"{name} is not a setting of the job" for name in unknown]
    problems += [f"{name} is a secret" for name in values if name in known and known[name].secret]
    for setting in s.ALL_SETTINGS:
        if not setting.required or setting.secret or values.get(setting.name):
            continue
        if setting is s.ENCRYPTION_KEY_FILE and values.get(s.KMS_KEY_ID.name):
            continue
        problems.append(f"required {setting.name} is missing")
    if not values.get(s.OUTPUT_URI.name, "").startswith("s3://"):
        problems.append(f"{s.OUTPUT_URI.name} is not s3://...")
    for on_volume in (s.WAREHOUSE_PATH, s.LOG_DIR, s.AUDIT_LOG_DIR):
        if not values.get(on_volume.name, "").startswith(SHARED_MOUNT + "/"):
            problems.append(f"{on_volume.name} is not on the shared volume {SHARED_MOUNT}")
    return problems


def check_settings_values(values: dict[str, str], monkeypatch) -> None:
    """Builds the resources the job checks its settings in, from ``values`` alone (the secrets a dummy):
    a bad value raises ``Setting ESG_X must be ..., got '...'`` as it would when a run launches."""
    from esg_assets.config import resources
    from esg_assets.config.environment import now
    from esg_assets.config.executor import shards_setting
    from esg_assets.core import settings as s

    for setting in s.ALL_SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.setenv("ESG_SITE_CONFIG", "")
    for setting in s.ALL_SETTINGS:
        if setting.secret and setting.required:
            monkeypatch.setenv(setting.name, "a-secret")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    resources.firm_api(now)
    resources.data_quality(now)
    resources.warehouse(now, resources.report_store_from(now))
    resources.alerting(now)
    resources.job_logs(now)
    shards_setting()
