"""Running the daily graph in tests: one partition, real resources from the environment, decrypted output."""

import csv
import io
from datetime import date

from dagster import DagsterInstance, materialize

from esg_assets.assets.active_accounts import active_accounts
from esg_assets.assets.daily_summary import daily_summary
from esg_assets.assets.esg_ratings import esg_ratings
from esg_assets.assets.ratings_file import ratings_file
from esg_assets.assets.run_history import run_history
from esg_assets.crypto.keys import load_key_ring
from esg_assets.crypto.stream_cipher import decrypt_stream
from esg_assets.resources.from_env import resources_from_env
from esg_assets.storage.file_names import ratings_file_name
from esg_assets.storage.report_store import report_store_for

DAY = date(2026, 11, 20)
ALL_ASSETS = [active_accounts, esg_ratings, ratings_file, daily_summary, run_history]


def run_day(day: date = DAY, assets=ALL_ASSETS, run_config=None):
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            assets,
            partition_key=day.isoformat(),
            resources=resources_from_env(),
            instance=instance,
            run_config=run_config,
        )
    assert result.success
    return result


def decrypted_file(paths: dict, day: date = DAY) -> bytes:
    store = report_store_for(f"file://{paths['output']}")
    with store.open(ratings_file_name(day)) as encrypted:
        return b"".join(decrypt_stream(encrypted, load_key_ring(paths["key_file"])))


def parsed(content: bytes) -> list[list[str]]:
    """The data rows of a decrypted file (header dropped), read by Python's csv module."""
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))[1:]


