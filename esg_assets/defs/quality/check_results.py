"""The day's asset checks as Dagster results: failure rate, completeness, format and reconciliation."""

from __future__ import annotations

from dataclasses import replace

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from esg_assets.core.check_report import CheckOutcome
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
                        "\n".join(
                            ([f"not run: {reconciliation.error}"] if reconciliation.error else [])
                            + reconciliation.mismatches
                            + reconciliation.not_refetched
                        )
                        or "none"
                    ),
                },
            )
        )
    return results


_BLOCKING = {(spec.asset_key, spec.name): spec.blocking for spec in [failure_rate_spec, *file_check_specs]}
_DESCRIPTIONS = {
    (spec.asset_key, spec.name): spec.description for spec in [failure_rate_spec, *file_check_specs]
}


def check_outcome(result: AssetCheckResult) -> CheckOutcome:
    """A check result as the day's files record it: its spec's blocking flag, its numbers as plain values."""
    key = (result.asset_key, result.check_name)
    metadata = {}
    for name, value in (result.metadata or {}).items():
        plain = getattr(value, "value", value)
        metadata[name] = plain if isinstance(plain, (str, int, float, bool)) else str(plain)
    return CheckOutcome(
        name=result.check_name,
        asset=result.asset_key.to_user_string(),
        passed=bool(result.passed),
        severity=result.severity.value,
        blocking=_BLOCKING[key],
        description=result.description or _DESCRIPTIONS[key] or "",
        metadata=metadata,
    )


# The texts of a check that name accounts (completeness's examples, reconciliation's mismatches): kept in the
# summary, which lists account ids, left out of the manifest, which holds none (docs/compliance.md).
ACCOUNT_TEXTS = ("examples", "details")


def without_account_texts(check: CheckOutcome) -> CheckOutcome:
    """``check`` with its numbers only: what the manifest records."""
    return replace(check, metadata={k: v for k, v in check.metadata.items() if k not in ACCOUNT_TEXTS})


def day_check_report(
    counts: dict[str, int],
    threshold: float,
    report: PublishedFileReport,
    reconciliation: ReconciliationReport,
) -> list[CheckOutcome]:
    """The day's four checks, in the order they run: ``failure_rate`` on the counts the file was written from,
    then the checks of the staged file."""
    results = [failure_rate_result(counts, threshold), *file_check_results(report, reconciliation)]
    return [check_outcome(result) for result in results]
