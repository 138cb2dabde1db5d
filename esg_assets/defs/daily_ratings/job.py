"""The daily job: every asset of the day's graph, for one partition, within the 4-hour window."""

from __future__ import annotations

from dagster import MAX_RUNTIME_SECONDS_TAG, AssetSelection, define_asset_job

from esg_assets.core.keys import DAILY_GROUP, DAILY_JOB_NAME

RUN_WINDOW_SECONDS = 4 * 60 * 60

esg_daily_job = define_asset_job(
    name=DAILY_JOB_NAME,
    selection=AssetSelection.groups(DAILY_GROUP),
    description="Active accounts -> ESG ratings -> encrypted ratings file -> daily summary -> run history.",
    # Run monitoring (dagster.yaml) cancels a run that exceeds this;
    # the deadline sensor enforces 09:00 Central.
    tags={MAX_RUNTIME_SECONDS_TAG: str(RUN_WINDOW_SECONDS)},
)
