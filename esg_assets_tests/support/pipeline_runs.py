"""Running the daily graph in tests: one partition, real resources from the environment, decrypted output."""

import csv
import io
from datetime import date

from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.defs.daily_ratings.active_accounts import active_accounts
from esg_assets.defs.daily_ratings.esg_ratings import esg_ratings
from esg_assets.defs.day_files.day_files import day_files
from esg_assets.defs.run_metrics.run_history import run_history
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.crypto.messages import decrypted_chunks
from esg_assets.lib.report_store.manifest import RATINGS_KIND
from esg_assets.lib.report_store.store import ReportStore, report_store_for
from esg_assets.lib.report_store.verification import committed_manifest

DAY = date(2026, 11, 20)
ALL_ASSETS = [active_accounts, esg_ratings, day_files, run_history]


def run_day(day: date = DAY, assets=ALL_ASSETS, run_config=None):
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            assets,
            partition_key=day.isoformat(),
            resources=dagster_resources(),
            instance=instance,
            run_config=run_config,
        )
    assert result.success
    return result


def decrypted_file(paths: dict, day: date = DAY, kind: str = RATINGS_KIND) -> bytes:
    """The day's live file of ``kind``, found through the sealed manifest and decrypted as its identity."""
    return live_file(
        report_store_for(f"file://{paths['output']}"),
        key_file_keyring(load_key_ring(paths["key_file"])),
        day,
        kind,
    )


def live_file(store: ReportStore, keyring, day: date = DAY, kind: str = RATINGS_KIND) -> bytes:
    manifest = committed_manifest(store, keyring, day)
    entry = manifest.entry(kind)
    with store.open(entry.path) as encrypted:
        return b"".join(decrypted_chunks(encrypted, keyring, manifest.file_identity(entry)))


def parsed(content: bytes) -> list[list[str]]:
    """The data rows of a decrypted file (header dropped), read by Python's csv module."""
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))[1:]


def materialized(result, asset: str) -> dict:
    """The metadata ``asset`` was materialized with in ``result`` (``day_files`` materializes two assets)."""
    for node in ("day_files", asset):
        try:
            materializations = result.asset_materializations_for_node(node)
        except Exception:  # noqa: BLE001 - not a node of this run
            continue
        for materialization in materializations:
            if materialization.asset_key.to_user_string() == asset:
                return materialization.metadata
    raise AssertionError(f"{asset} was not materialized")


def live_set(output, day: date = DAY) -> dict:
    """The day's live set in the local store ``output``: file name -> path, as its manifest lists them."""
    from esg_assets.core.file_names import manifest_file_name
    from esg_assets.lib.report_store.manifest import Manifest

    manifest = Manifest.from_json((output / manifest_file_name(day)).read_bytes())
    return {entry.name: output / entry.path for entry in manifest.files}


def stored_files(output) -> list[str]:
    """Every file under the local store ``output``, as paths relative to it."""
    return sorted(path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file())


def resources_with_report_store(report_store_class) -> dict:
    """The job's resources from the environment, its report store built as ``report_store_class`` (a subclass
    of ReportStoreResource whose ``store()`` misbehaves on purpose) with the same settings."""
    resources = dagster_resources()
    configured = resources["report_store"]
    resources["report_store"] = report_store_class(
        **{name: getattr(configured, name) for name in configured.__class__.model_fields}
    )
    return resources
