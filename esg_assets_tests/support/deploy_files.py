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
