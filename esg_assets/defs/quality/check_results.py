"""The day's asset checks as Dagster results: failure rate, completeness, format and reconciliation."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from esg_assets.core.keys import COMPLETENESS_CHECK, FAILURE_RATE_CHECK, FORMAT_CHECK, RECONCILIATION_CHECK
from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.core.run_metadata import FailureRateMetadata, ReconciliationMetadata
from esg_assets.defs.quality.file_checks import PublishedFileReport
from esg_assets.defs.quality.reconciliation import ReconciliationReport

failure_rate_spec = AssetCheckSpec(
    FAILURE_RATE_CHECK.name,
    asset=FAILURE_RATE_CHECK.asset_key,
    description="Failed accounts / all accounts <= ESG_MAX_FAILURE_RATE (default 5%). Not blocking: the file "
    "is still published with the failures marked, and a breach pages the on-call and the business.",
)
file_check_specs = [
    AssetCheckSpec(
        COMPLETENESS_CHECK.name,
        asset=COMPLETENESS_CHECK.asset_key,
        blocking=True,
        description="Every active account of the day's snapshot has exactly one row in the published file.",
    ),
    AssetCheckSpec(
        FORMAT_CHECK.name,
        asset=FORMAT_CHECK.asset_key,
        blocking=True,
        description="The published file decrypts and parses as RFC 4180 with the exact header, and every "
        "value obeys the format rules.",
    ),
    AssetCheckSpec(
        RECONCILIATION_CHECK.name,
        asset=RECONCILIATION_CHECK.asset_key,
        description="A random sample of accounts (ESG_RECONCILIATION_SAMPLE, default 20) fetched again from "
        "the ESG API matches the file.",
    ),
]


def failure_rate_result(counts: dict[str, int], threshold: float) -> AssetCheckResult:
    total = sum(counts.values())
    failed = counts[ProcessingStatus.FAILED.value]
    rate = failed / total if total else 0.0
    return AssetCheckResult(
        check_name=FAILURE_RATE_CHECK.name,
        asset_key=FAILURE_RATE_CHECK.asset_key,
        passed=rate <= threshold,
        severity=AssetCheckSeverity.ERROR,
        description=f"{failed} of {total} accounts Failed ({rate:.2%}); the threshold is {threshold:.2%}.",
        metadata=FailureRateMetadata(failed, total, rate, threshold).to_metadata(),
    )


def file_check_results(report: PublishedFileReport, reconciliation: ReconciliationReport | None) -> list:
    examples = MetadataValue.text("\n".join(report.examples) or "none")
    results = [
        AssetCheckResult(
            check_name=COMPLETENESS_CHECK.name,
            asset_key=COMPLETENESS_CHECK.asset_key,
            passed=report.format_problem is None and report.complete,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows": report.rows,
                "missing_accounts": report.missing_accounts,
                "unexpected_rows": report.unexpected_rows,
                "duplicate_rows": report.duplicate_rows,
                "examples": examples,
            },
        ),
        AssetCheckResult(
            check_name=FORMAT_CHECK.name,
            asset_key=FORMAT_CHECK.asset_key,
            passed=report.format_problem is None,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "problem": MetadataValue.text(report.format_problem or "none"),
                "rows_read": report.rows,
            },
        ),
    ]
    if reconciliation is not None:
        results.append(
            AssetCheckResult(
                check_name=RECONCILIATION_CHECK.name,
                asset_key=RECONCILIATION_CHECK.asset_key,
                passed=reconciliation.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    **ReconciliationMetadata(
                        compared=reconciliation.compared,
                        mismatches=len(reconciliation.mismatches),
                        not_refetched=len(reconciliation.not_refetched),
                    ).to_metadata(),
                    "details": MetadataValue.text(
                        "\n".join(reconciliation.mismatches + reconciliation.not_refetched) or "none"
                    ),
                },
            )
        )
    return results
