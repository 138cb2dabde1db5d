"""Publishes where ``esg_ratings`` stands while it fetches, for the sensors that warn before the limits.

Each report is an ``AssetObservation`` of ``esg_ratings`` for the day's partition, written to the instance at
once through Dagster's public ``report_runless_asset_event``. Not ``context.log_event``: Dagster keeps the
events an asset logs until its body returns, so the sensors would see none while the fetch runs. The run is
named in the metadata (``RatingsProgressMetadata.run_id``) instead of by the event; the observations also show
on the asset's page in the UI.
"""

from __future__ import annotations

import logging

from dagster import AssetObservation, DagsterInstance

from esg_assets.core.keys import ESG_RATINGS
from esg_assets.core.run_metadata import RatingsProgressMetadata

logger = logging.getLogger(__name__)


def report_progress(instance: DagsterInstance, partition: str, progress: RatingsProgressMetadata) -> None:
    """Records ``progress`` as an observation of the day's ``esg_ratings``.

    A report the instance does not take is logged and skipped: the next one, 10 seconds later, carries the
    same cumulative counters, and the fetch must not stop for a warning.
    """
    try:
        instance.report_runless_asset_event(
            AssetObservation(
                asset_key=ESG_RATINGS,
                partition=partition,
                description=f"fetch progress: {progress.done} of {progress.to_fetch} accounts",
                metadata=progress.to_metadata(),
            )
        )
    except Exception as error:  # noqa: BLE001 - a warning's input is not worth the day's fetch
        logger.warning("esg_ratings progress not recorded: %s: %s", type(error).__name__, error)
