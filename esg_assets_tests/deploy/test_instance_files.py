"""Each deployment's instance file (deploy/<target>/dagster.yaml) loads as a Dagster instance on a real
PostgreSQL, with the root dagster.yaml's run monitoring and run queue, and its run launcher built.

Two things of the file are made this machine's, each asserted to be there: the shared volume's path
(/var/lib/esg) becomes a folder of the test, and on Kubernetes the in-cluster credentials
(``load_incluster_config: true``) become a kubeconfig file naming a cluster that is never contacted (building
the K8sRunLauncher loads its credentials; launching nothing needs the cluster). Everything else is the file as
shipped, so a wrong key or value in it fails here.
"""

from __future__ import annotations

import shutil

import pytest
from dagster import DagsterInstance
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from esg_assets_tests.support.deploy_files import SHARED_MOUNT, TARGETS, target_file
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.postgres_server import SUPERUSER, PostgresServer

pytestmark = pytest.mark.integration

LAUNCHERS = {"kubernetes": K8sRunLauncher, "docker": DockerRunLauncher}
IN_CLUSTER = "load_incluster_config: true"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
  - name: never-contacted
    cluster: {server: "https://127.0.0.1:9"}
users:
  - name: esg-dagster
    user: {token: not-a-token}
contexts:
  - name: esg
    context: {cluster: never-contacted, user: esg-dagster, namespace: esg}
current-context: esg
"""


def dagster_pg_url(server: PostgresServer) -> str:
    """A database of its own on the test's PostgreSQL, as docs/operations.md writes DAGSTER_PG_URL."""
    connection = server.superuser()
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE dagster")
    finally:
        connection.close()
    return (
        f"postgresql+psycopg2://{SUPERUSER}:{server.superuser_password}@{server.host}:{server.port}/dagster"
        f"?sslmode=verify-full&sslrootcert={server.ca_file}"
    )


def home_with(target: str, tmp_path) -> tuple[str, str]:
    """A DAGSTER_HOME holding the target's dagster.yaml, made this machine's (the module's docstring);
    returns the home and the folder standing for the shared volume."""
    text = target_file(target, "dagster.yaml").read_text()
    shared = tmp_path / "shared"
    assert SHARED_MOUNT in text, f"deploy/{target}/dagster.yaml puts nothing on the shared volume"
    text = text.replace(SHARED_MOUNT, str(shared))
    if target == "kubernetes":
        assert text.count(IN_CLUSTER) == 1, f"deploy/{target}/dagster.yaml: expected `{IN_CLUSTER}` once"
        (tmp_path / "kubeconfig").write_text(KUBECONFIG)
        text = text.replace(
            IN_CLUSTER, f"load_incluster_config: false\n    kubeconfig_file: {tmp_path / 'kubeconfig'}"
        )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    return str(home), str(shared)


def root_instance(tmp_path) -> DagsterInstance:
    """The one-machine instance of the root dagster.yaml (SQLite), to compare the queue and monitoring."""
    home = tmp_path / "root_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


@pytest.mark.parametrize("target", TARGETS)
def test_the_instance_file_loads_on_postgresql_with_the_roots_queue_and_monitoring(
    target, tmp_path, monkeypatch, postgres_server
):
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url(postgres_server))
    home, shared = home_with(target, tmp_path)
    root = root_instance(tmp_path)
    instance = DagsterInstance.from_config(home)
    try:
        # Runs, events and schedules in PostgreSQL, created by loading the instance, and read back from it.
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.get_runs_count() == 0
        connection = postgres_server.connect(SUPERUSER, postgres_server.superuser_password, dbname="dagster")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM runs")
                assert cursor.fetchone() == (0,)
        finally:
            connection.close()

        # The root's run monitoring (the 4-hour limit) and run queue (one run, never two of a day), unchanged.
        for key, value in root.run_monitoring_settings.items():
            assert instance.run_monitoring_settings[key] == value, key
        assert instance.run_monitoring_enabled
        assert (
            instance.get_concurrency_config().run_queue_config
            == root.get_concurrency_config().run_queue_config
        )

        # Step outputs and step logs on the shared volume, where every pod or container sees them.
        assert instance.storage_directory().startswith(shared)
        assert instance.compute_log_manager.inst_data.config_dict["base_dir"].startswith(shared)

        # The target's run launcher, built from the file's config (a wrong key or type fails here).
        assert isinstance(instance.run_launcher, LAUNCHERS[target])
    finally:
        instance.dispose()
        root.dispose()
