"""``ratings_file`` and ``daily_summary``: the day's files, written to a staging set, checked as a reader
would read them, and only then published together in one commit."""

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    multi_asset,
)

from esg_assets.core.file_names import (
    errors_file_name,
    manifest_file_name,
    publishing_lock_name,
    ratings_file_name,
    summary_file_name,
)
from esg_assets.core.keys import DAILY_GROUP, DAILY_SUMMARY, ESG_RATINGS, RATINGS_FILE
from esg_assets.core.partitions import daily_partitions, partition_day
from esg_assets.core.ratings.errors_csv import write_errors_csv
from esg_assets.core.ratings.model import FetchTask, ProcessingStatus
from esg_assets.core.ratings.ratings_csv import write_ratings_csv
from esg_assets.core.run_metadata import RatingsFileMetadata
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.rating_result import rating_result
from esg_assets.defs.daily_ratings.run_timing import run_started_at
from esg_assets.defs.quality.check_results import (
    day_check_report,
    file_check_results,
    file_check_specs,
    without_account_texts,
)
from esg_assets.defs.quality.file_checks import PublishedFileReport, read_back_published_file
from esg_assets.defs.quality.reconciliation import ReconciliationReport, reconcile
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.defs.summary.summary_email import OFF, SENT, SummaryEmailResource
from esg_assets.defs.summary.summary_files import render_summary_files, summary_metadata
from esg_assets.defs.summary.summary_report import build_summary_report
from esg_assets.lib.access.caller import SudoUser
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource, logged_step
from esg_assets.lib.report_store.locks import LockedError
from esg_assets.lib.report_store.manifest import ERRORS_KIND, RATINGS_KIND, SUMMARY_KIND
from esg_assets.lib.report_store.publishing import DaySet, remove_other_sets
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.report_store.verification import verify_files
from esg_assets.lib.warehouse.ratings import (
    iter_error_rows,
    iter_file_rows,
    iter_snapshot_ids,
    reconciliation_sample,
    unrated_accounts,
)
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.resource_figures import resource_figures

_STATUS_COLUMN = 9
logger = logging.getLogger(__name__)


def _counting(rows: Iterable[tuple], counts: Counter) -> Iterator[tuple]:
    for row in rows:
        counts[row[_STATUS_COLUMN]] += 1
        yield row


@multi_asset(
    name="day_files",
    partitions_def=daily_partitions,
    specs=[
        AssetSpec(
            RATINGS_FILE,
            deps=[ESG_RATINGS],
            group_name=DAILY_GROUP,
            kinds={"csv"},
            description="FirmESGRatings_YYYYMMDD.csv: one row per active account, sorted by Account ID, "
            "encrypted with the AWS Encryption SDK (its encryption context names the file, day, kind, schema "
            "version and run), with the error log FirmESGRatings_YYYYMMDD_errors.csv (accounts not "
            "Successful, ids only). Staged with the summary files, checked as a reader would read them, then "
            "published together to ESG_OUTPUT_URI by one commit of the sealed manifest "
            "FirmESGRatings_YYYYMMDD.manifest.json. A failed blocking check publishes nothing. Each step is "
            "recorded in the audit log.",
        ),
        AssetSpec(
            DAILY_SUMMARY,
            deps=[RATINGS_FILE],
            group_name=DAILY_GROUP,
            kinds={"html", "markdown"},
            description="Total accounts, success rate, counts by status, average Overall/E/S/G scores, "
            "Primary ESG Focus, score histograms, failed account ids (no names), change since the previous "
            "day, the run's performance and resource use, the day's four checks and their outcomes, and "
            "30/90-day trends. Published in the day's set as FirmESGSummary_YYYYMMDD.html/.md/.json and "
            "emailed to ESG_SUMMARY_EMAIL_TO when set.",
        ),
    ],
    check_specs=file_check_specs,
)
@logged_step
def day_files(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    report_store: ReportStoreResource,
    firm_api: FirmApiResource,
    data_quality: DataQualityResource,
    summary_email: SummaryEmailResource,
    sudo_user: ResourceParam[SudoUser],
    job_logs: JobLogsResource,  # for @logged_step
    day_run_lock: DayRunLockResource,  # held for the whole run: one run of the day at a time
):
    day = partition_day(context.partition_key)
    store = report_store.store()
    keyring = report_store.keyring()
    audit = report_store.audit_log()
    with ExitStack() as held:
        try:
            held.enter_context(store.exclusive(publishing_lock_name(day)))
        except LockedError as error:
            raise Failure(
                f"another run of {day} is publishing its files right now ({error}); this run published "
                "nothing. Run the day again once that run has finished."
            ) from None
        day_set = DaySet(store, keyring, audit, sudo_user.caller(audit.directory), day, context.run.run_id)
        yield from _stage_check_commit(
            context, day_set, report_store, warehouse, firm_api, data_quality, summary_email
        )


def _stage_check_commit(context, day_set, report_store, warehouse, firm_api, data_quality, summary_email):
    """Under the day's lock: remove what killed runs left, stage the set, check it, commit it, report it.

    The checks run before the summary is written, so the summary and the manifest carry all four outcomes:
    the ratings and error files are staged and read back (``completeness``, ``file_format``), the sample is
    asked again (``reconciliation``), ``failure_rate`` is evaluated on the counts the file holds; then the
    summary files are staged and verified too (a problem there fails ``file_format``), and the manifest,
    with the check report, commits the set.
    """
    store, keyring, day = day_set.store, day_set.keyring, day_set.day
    removed = remove_other_sets(store, day)  # what killed runs of the day staged
    if removed:
        context.log.info(f"removed {len(removed)} sets of {day} that are not live: {', '.join(removed)}")
    counts: Counter = Counter()
    with warehouse.connect() as connection:
        missing = unrated_accounts(connection, day)
        if missing:
            raise Failure(
                f"{missing} active accounts of {day} have no rating row; materialize esg_ratings for "
                f"{day} first. No file was written."
            )
        rows = _counting(iter_file_rows(connection, day), counts)
        ratings = day_set.stage_encrypted(
            ratings_file_name(day), RATINGS_KIND, lambda out: write_ratings_csv(rows, out)
        )
        day_set.stage_encrypted(
            errors_file_name(day),
            ERRORS_KIND,
            lambda out: write_errors_csv(iter_error_rows(connection, day), out),
        )
        # The staged files, read back as a reader would: every account once,
        # then the files as verify checks them.
        staged_files = day_set.manifest(counts)
        sample = reconciliation_sample(connection, day, data_quality.reconciliation_sample)
        with store.open(ratings.path) as staged:
            report = read_back_published_file(
                staged,
                keyring,
                staged_files.file_identity(ratings),
                iter_snapshot_ids(connection, day),
                sample,
            )
    _add_set_problems(report, verify_files(store, keyring, staged_files))
    if not report.complete:
        yield from _refuse(day_set, report, None)
    # Outside the warehouse connection: the API may take a while, and nothing is written meanwhile.
    reconciliation = _reconcile(firm_api, report.sampled_rows, day)
    checks = day_check_report(counts, data_quality.failure_rate_threshold(), report, reconciliation)
    with warehouse.connect() as connection:
        summary_report = build_summary_report(
            connection,
            day,
            context.run.run_id,
            run_started_at(context),
            support_url=summary_email.support_url,
            resources=resource_figures(warehouse),
            checks=checks,
        )
    summary = render_summary_files(summary_report)
    summary_entries = [
        day_set.stage_plain(summary_file_name(day, extension), SUMMARY_KIND, content)
        for extension, content in summary.contents.items()
    ]
    _add_set_problems(report, verify_files(store, keyring, replace(staged_files, files=summary_entries)))
    if not report.complete:
        yield from _refuse(day_set, report, reconciliation)
    # The summary's check report, sealed with the set; without the texts that name accounts.
    manifest = day_set.manifest(counts, [without_account_texts(check) for check in checks])
    if report_store.keyring().recipients != keyring.recipients:
        # A reader removed (or added) while this run staged: its files went to the old list. Publish nothing.
        reason = (
            f"the readers list changed while this run staged the files of {day}; nothing was published. "
            "Run the day again: its files will be encrypted to the list as it is now."
        )
        day_set.discard(reason)
        raise Failure(reason)
    manifest = day_set.commit(manifest)
    context.log.info(
        f"published the set {manifest.version} of {day}: {ratings.rows} rows, "
        f"{store.uri(manifest_file_name(day))} (key {ratings.key_id})"
    )
    # After the commit: a relay that is down costs the email, never the day's files.
    delivery = summary_email.send(summary_report, summary.charts)
    if delivery.status == SENT:
        context.log.info(f"summary email {delivery.detail}")
    elif delivery.status != OFF:
        context.log.warning(f"summary email not sent: {delivery.detail}")
    checkpoint = day_set.audit.checkpoint()
    locations = {entry.name: MetadataValue.path(store.uri(entry.path)) for entry in manifest.files}
    yield MaterializeResult(
        asset_key=RATINGS_FILE,
        check_results=file_check_results(report, reconciliation),
        metadata={
            **RatingsFileMetadata(rows=ratings.rows, size_bytes=ratings.stored_bytes).to_metadata(),
            **{f"rows_{status.value.lower()}": counts[status.value] for status in ProcessingStatus},
            "location": locations[ratings.name],
            "error_log_rows": manifest.entry(ERRORS_KIND).rows,
            "error_log_location": locations[errors_file_name(day)],
            "manifest_location": MetadataValue.path(store.uri(manifest_file_name(day))),
            "set_version": manifest.version,
            "sha256": ratings.stored_sha256,
            "key_id": ratings.key_id,
            # The audit log's last record, kept in Dagster's event log too: a second, separate witness.
            "audit_checkpoint": f"{checkpoint.seq}:{checkpoint.hash}" if checkpoint else "none",
            **resource_figures(warehouse).to_metadata(),
        },
    )
    yield MaterializeResult(
        asset_key=DAILY_SUMMARY,
        metadata={
            **summary_metadata(summary_report, summary.markdown),
            "html_location": locations[summary_file_name(day, "html")],
            "markdown_location": locations[summary_file_name(day, "md")],
            "json_location": locations[summary_file_name(day, "json")],
            "email_status": MetadataValue.text(delivery.status),
            "email_detail": MetadataValue.text(delivery.detail),
        },
    )


def _add_set_problems(report: PublishedFileReport, set_problems: list[str]) -> None:
    """Problems ``esg-report verify`` would find in staged files fail ``file_format`` (the first five)."""
    if set_problems and report.format_problem is None:
        report.format_problem = "; ".join(set_problems[:5])


def _reconcile(firm_api: FirmApiResource, sampled_rows: dict, day) -> ReconciliationReport:
    """The sample asked again from the API; no connection at all when the sample is empty (set to 0).

    It runs before the commit, and is not blocking: when the API cannot be asked at all (no token, say), the
    check fails naming why, and the day's files are still published.
    """
    if not sampled_rows:
        return reconcile({}, lambda account_id: None)
    try:
        with firm_api.open_clients() as clients:
            return reconcile(
                sampled_rows,
                lambda account_id: rating_result(
                    FetchTask(account_id), clients.esg.fetch_rating(account_id, day), day
                ),
            )
    except Exception as error:  # noqa: BLE001 - any failure costs the check, never the day's files
        logger.warning("reconciliation not run: %s: %s", type(error).__name__, error)
        return ReconciliationReport(error=f"{type(error).__name__}: {error}")


def _refuse(day_set: DaySet, report: PublishedFileReport, reconciliation: ReconciliationReport | None):
    """A blocking check failed: record the checks, drop the staged set, fail the run. Nothing goes live."""
    yield from file_check_results(report, reconciliation)
    failed = "completeness" if report.format_problem is None else "file_format"
    reason = (
        f"the staged files of {day_set.day} failed the blocking check {failed}: "
        f"{report.format_problem or report.describe_gaps()}. Nothing was published: the set that was live "
        f"before this run is still the day's set."
    )
    day_set.discard(reason)
    raise Failure(reason)
