"""``active_accounts``: the day's snapshot of the firm's active accounts, walked from the AMS into DuckDB."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from esg_assets.core.keys import ACTIVE_ACCOUNTS, DAILY_GROUP
from esg_assets.core.partitions import daily_partitions, partition_day
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.lib.firm_api.ams import WalkRestart
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.warehouse.account_snapshots import SnapshotWriter
from esg_assets.lib.warehouse.resource import WarehouseResource

# Enough detail to find a bad AMS row without flooding the run log when a whole page is bad.
_REJECTS_LOGGED_IN_FULL = 50


@asset(
    key=ACTIVE_ACCOUNTS,
    partitions_def=daily_partitions,
    group_name=DAILY_GROUP,
    kinds={"duckdb"},
    description="Active accounts of the day from the Account Management System: one row per account_id "
    "(latest updated_at wins), status active, valid ids only. Table account_snapshots.",
)
@logged_step
def active_accounts(
    context: AssetExecutionContext,
    firm_api: FirmApiResource,
    warehouse: WarehouseResource,
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held for the whole run: one run of the day at a time
) -> MaterializeResult:
    day = partition_day(context.partition_key)
    pages = rejected = repaired = warnings = restarts = 0
    with firm_api.open_clients() as clients, warehouse.connect() as connection:
        snapshot = SnapshotWriter(connection, day)
        for page in clients.ams.walk():
            if isinstance(page, WalkRestart):
                # Only a complete walk makes the snapshot: what the aborted one gave is dropped.
                context.log.warning(f"{page.reason}; walk {page.walk} starts from the first page")
                snapshot.discard_staged()
                pages = rejected = repaired = warnings = 0
                restarts += 1
                continue
            pages += 1
            snapshot.stage(page)
            for reject in page.rejected:
                rejected += 1
                if rejected <= _REJECTS_LOGGED_IN_FULL:
                    context.log.warning(reject.describe())
            for warning in page.warnings:  # ids and reasons only: never a name
                warnings += 1
                if warnings <= _REJECTS_LOGGED_IN_FULL:
                    context.log.warning(warning.describe())
            repaired += len({warning.position for warning in page.warnings})
        counts = snapshot.replace_snapshot()
    if rejected > _REJECTS_LOGGED_IN_FULL:
        context.log.warning(
            f"{rejected} AMS rows rejected in all (first {_REJECTS_LOGGED_IN_FULL} logged above)"
        )
    if warnings > _REJECTS_LOGGED_IN_FULL:
        context.log.warning(
            f"{warnings} problems of AMS rows kept in all (first {_REJECTS_LOGGED_IN_FULL} logged above)"
        )
    context.log.info(
        f"{counts.active_accounts} active accounts for {day}: {counts.rows_received} rows on {pages} pages, "
        f"{counts.duplicates_dropped} duplicates, {counts.not_active} not active, {rejected} rejected, "
        f"{repaired} kept with a repair, {restarts} restarts of the walk"
    )
    return MaterializeResult(
        metadata={
            "active_accounts": counts.active_accounts,
            "ams_pages": pages,
            "ams_rows_received": counts.rows_received,
            "duplicates_dropped": counts.duplicates_dropped,
            "not_active_dropped": counts.not_active,
            "rows_rejected": rejected,
            "rows_repaired": repaired,
            "ams_walk_restarts": restarts,
            "table": MetadataValue.text("account_snapshots"),
        }
    )
