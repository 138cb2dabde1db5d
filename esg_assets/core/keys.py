"""The names other parts rely on: asset, check and job keys, the asset group, and Dagster's partition tag."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey

DAILY_GROUP = "esg_daily"

ACTIVE_ACCOUNTS = AssetKey("active_accounts")
ESG_RATINGS = AssetKey("esg_ratings")
RATINGS_FILE = AssetKey("ratings_file")
DAILY_SUMMARY = AssetKey("daily_summary")
RUN_HISTORY = AssetKey("run_history")
DAILY_ASSETS = (ACTIVE_ACCOUNTS, ESG_RATINGS, RATINGS_FILE, DAILY_SUMMARY, RUN_HISTORY)

# Every alert the sensors sent or hold pending, as observations by day
# (esg_assets/defs/alerting/alert_ledger.py).
ALERT_LEDGER = AssetKey("esg_alert_ledger")

FAILURE_RATE_CHECK = AssetCheckKey(ESG_RATINGS, "failure_rate")
COMPLETENESS_CHECK = AssetCheckKey(RATINGS_FILE, "completeness")
FORMAT_CHECK = AssetCheckKey(RATINGS_FILE, "file_format")
RECONCILIATION_CHECK = AssetCheckKey(RATINGS_FILE, "reconciliation")

DAILY_JOB_NAME = "esg_daily_job"
RETENTION_JOB_NAME = "retention_job"

# The tag Dagster puts on a run of one partition; Dagster exports no public name for it (its own is internal):
# test_definitions checks it against a real partition's run.
PARTITION_TAG = "dagster/partition"
