"""Reconciliation: a sample of the file's rows must match what the ESG API answers for them one by one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from esg_assets.core.ratings.model import RatingResult
from esg_assets.core.ratings.ratings_csv import HEADER, format_ratings_row

_COMPARED = HEADER[2:]  # the six values, the analysis date and the Processing Status


@dataclass
class ReconciliationReport:
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)  # "ACC-1: Social Score file 71.20, API 71.30"
    not_refetched: list[str] = field(default_factory=list)  # the API gave no rating this time
    error: str | None = None  # why the sample could not be asked again at all (e.g. no token)

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None


def file_texts(result: RatingResult) -> dict[str, str]:
    """The texts the file would hold for this result, column by column (the name is not the API's)."""
    values = result.values
    row = (result.account_id, "", *(_values(values) if values else (None,) * 7), result.status.value)
    return dict(zip(HEADER, format_ratings_row(row), strict=True))


def _values(values) -> tuple:
    return (*values.six_values, values.analysis_date)


def reconcile(
    file_rows: Mapping[str, Mapping[str, str]], refetch: Callable[[str], RatingResult]
) -> ReconciliationReport:
    """Ask the API again for each sampled account (unconditionally) and compare column by column."""
    report = ReconciliationReport()
    for account_id, file_row in sorted(file_rows.items()):
        result = refetch(account_id)
        if result.values is None:
            report.not_refetched.append(f"{account_id}: {result.error_reason}")
            continue
        report.compared += 1
        api_row = file_texts(result)
        for column in _COMPARED:
            if file_row[column] != api_row[column]:
                report.mismatches.append(
                    f"{account_id}: {column} file {file_row[column]!r}, API {api_row[column]!r}"
                )
    return report
