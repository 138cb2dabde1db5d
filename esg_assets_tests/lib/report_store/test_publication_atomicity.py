"""Write, audit, publish: a re-run of a published day killed with SIGKILL at any point of publishing leaves
the old complete set or the new one, never a mix; the next run cleans up; a staged set that fails its blocking
checks is never published, the run fails and the failure is alerted."""

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.file_names import (
    manifest_file_name,
    publishing_lock_name,
    ratings_file_name,
    versions_folder,
)
from esg_assets.defs.alerting.run_endings import run_ending_alert
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import generate_key_file, load_key_ring
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.report_store.verification import verify_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.killed_publisher import POINTS
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import (
    ALL_ASSETS,
    DAY,
    decrypted_file,
    live_file,
    resources_with_report_store,
    run_day,
    stored_files,
)
from esg_assets_tests.support.published_day import publish_day


@pytest.fixture
def published(tmp_path):
    """A day published once (300 accounts, run-1); what the killed re-run would replace it with."""
    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    keys = key_file_keyring(load_key_ring(key_file))
    new_store = LocalReportStore(tmp_path / "reference")
    publish_day(new_store, keys, tmp_path / "reference-audit", DAY, accounts=250, run_id="run-killed")
    store = LocalReportStore(tmp_path / "reports")
    publish_day(store, keys, tmp_path / "audit", DAY)
    old, new = live_file(store, keys), live_file(new_store, keys)
    assert old != new
    return store, keys, key_file, old, new


@pytest.mark.integration
@pytest.mark.parametrize("point", POINTS)
def test_a_publication_killed_at_any_point_leaves_the_old_or_the_new_set_whole(published, tmp_path, point):
    store, keys, key_file, old, new = published
    result = subprocess.run(
        [sys.executable, "-m", "esg_assets_tests.support.killed_publisher",
         str(store.root), str(key_file), str(tmp_path / "audit"), point],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == -9, result.stderr  # it really died by SIGKILL at that point
    assert verify_day(store, keys, DAY).problems == []
    expected = old if point in ("writing-ratings", "staged", "intent-recorded", "writing-manifest") else new
    assert live_file(store, keys) == expected
    # Every live file has an audit record of this run or of the one before, whatever the point.
    audited = {record["file"] for record in _audit(tmp_path / "audit")}
    manifest = json.loads((store.root / manifest_file_name(DAY)).read_bytes())
    assert {entry["path"] for entry in manifest["files"]} <= audited
    # The next run of the day removes what the killed one left and publishes whole.
    publish_day(store, keys, tmp_path / "audit", DAY, accounts=120, run_id="run-next")
    assert verify_day(store, keys, DAY).problems == []
    live = json.loads((store.root / manifest_file_name(DAY)).read_bytes())
    assert {
        name.split("/")[1] for name in stored_files(store.root) if name.startswith(versions_folder(DAY))
    } == {live["set_version"]}
    # No staged file is left, whole or partial. (A commit killed while writing the manifest leaves its
    # temporary beside it, counts and hashes only, until a publication an hour later removes it.)
    assert not [name for name in stored_files(store.root) if "/" in name and Path(name).name.startswith(".")]


def _audit(directory: Path) -> list[dict]:
    with (directory / "audit.jsonl").open() as log:
        return [json.loads(line) for line in log]


class CorruptingStore(LocalReportStore):
    """A store whose disk flips one byte of each staged ratings file as it is written."""

    @contextmanager
    def publish(self, name: str):
        with super().publish(name) as sink:
            yield sink
        if name.endswith("/" + ratings_file_name(DAY)):
            with self._path(name).open("r+b") as written:
                written.seek(200)
                byte = written.read(1)
                written.seek(200)
                written.write(bytes([byte[0] ^ 0x01]))


class CorruptingReportStore(ReportStoreResource):
    def store(self):
        return CorruptingStore(self.output_uri.removeprefix("file://"))


@pytest.mark.e2e
def test_a_staged_set_failing_file_format_is_not_published_and_the_run_fails_alerted(
    job_environment, tmp_path
):
    with SandboxServer(SandboxConfig(accounts=60, seed=11, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        before = decrypted_file(paths)
        manifest_before = (paths["output"] / manifest_file_name(DAY)).read_bytes()
        resources = resources_with_report_store(CorruptingReportStore)
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                ALL_ASSETS,
                partition_key=DAY.isoformat(),
                resources=resources,
                instance=instance,
                run_config={"ops": {"esg_ratings": {"config": {"full_refresh": True}}}},
                raise_on_error=False,
            )
            assert not result.success
            alert = run_ending_alert(instance, instance.get_run_by_id(result.run_id))
    # The previous set is what decrypt and verify still return, byte for byte.
    assert (paths["output"] / manifest_file_name(DAY)).read_bytes() == manifest_before
    assert decrypted_file(paths) == before
    keys = key_file_keyring(load_key_ring(paths["key_file"]))
    assert verify_day(LocalReportStore(paths["output"]), keys, DAY).problems == []
    # The check says why, nothing was materialized, and the run's failure names it.
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "file_format"]
    assert not evaluation.passed and "authentication failed" in evaluation.metadata["problem"].value
    assert not [m for m in result.asset_materializations_for_node("day_files")]
    assert alert is not None
    text = f"{alert.summary} {dict(alert.details)}"
    assert "failed the blocking check file_format" in text and "Nothing was published" in text
    # The rejected staging is gone and recorded as discarded.
    assert {name.split("/")[1] for name in stored_files(paths["output"]) if "/" in name} == {
        json.loads(manifest_before)["set_version"]
    }
    discarded = [r for r in _audit(paths["audit"]) if r["action"] == "discard"]
    assert len(discarded) == 1 and discarded[0]["run_id"] == result.run_id


@pytest.mark.e2e
def test_a_second_run_of_a_day_being_published_publishes_nothing_and_says_why(job_environment):
    with SandboxServer(SandboxConfig(accounts=40, seed=12, ams_noise=False)) as sandbox:
        paths = job_environment(sandbox)
        run_day()
        before = (paths["output"] / manifest_file_name(DAY)).read_bytes()
        store = LocalReportStore(paths["output"])
        with store.exclusive(publishing_lock_name(DAY)):  # a run of the day still publishing
            with DagsterInstance.ephemeral() as instance:
                result = materialize(
                    ALL_ASSETS,
                    partition_key=DAY.isoformat(),
                    resources=dagster_resources(),
                    instance=instance,
                    raise_on_error=False,
                )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        assert (
            "another run of 2026-11-20 is publishing its files right now"
            in failure.user_failure_data.description
        )
        # Nothing of the first run's set was touched; once the lock is free the day publishes again.
        assert (paths["output"] / manifest_file_name(DAY)).read_bytes() == before
        assert verify_day(store, key_file_keyring(load_key_ring(paths["key_file"])), DAY).problems == []
        run_day()
    assert (paths["output"] / manifest_file_name(DAY)).read_bytes() != before
