"""The day's figures: status counts, average scores, Primary ESG Focus, score histograms, failed accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb

from esg_assets.core.ratings.model import ProcessingStatus

# Failed accounts held in memory and listed in the JSON file: a day when the API is down can fail every one
# of a million accounts. The count is always exact; every reason stays in the warehouse (esg_ratings).
FAILED_ACCOUNTS_LISTED = 1_000

PILLARS = {
    "Overall": "overall",
    "Environmental": "environmental",
    "Social": "social",
    "Governance": "governance",
}
FOCUS_PILLARS = ("Environmental", "Social", "Governance")
NOT_AVAILABLE = "N/A"

# Scores run from 0 to 100: ten bins of ten points, the last one closed so that 100 falls in it.
HISTOGRAM_BIN_WIDTH = 10
HISTOGRAM_BINS = 10
HISTOGRAM_LABELS = tuple(
    f"{start}-{start + HISTOGRAM_BIN_WIDTH}" for start in range(0, HISTOGRAM_BIN_WIDTH * HISTOGRAM_BINS, 10)
)

# The day's rows of the file: the snapshot joined with its ratings (an account that left the snapshot is not
# part of the day).
_DAY_ROWS = """
    FROM account_snapshots s JOIN esg_ratings r
      ON r.partition_date = s.partition_date AND r.account_id = s.account_id
    WHERE s.partition_date = $day
"""


@dataclass(frozen=True)
class FailedAccount:
    account_id: str
    reason: str | None
    http_status: int | None


@dataclass(frozen=True)
class DailySummary:
    partition_date: date
    total_accounts: int
    counts: dict[str, int]  # Processing Status -> accounts
    average_scores: dict[str, Decimal | None]  # Overall, Environmental, Social, Governance
    primary_focus: dict[str, int]  # pillar (or "N/A") -> accounts
    score_histograms: dict[str, list[int]]  # pillar -> accounts per bin of HISTOGRAM_LABELS
    failed_total: int
    failed_accounts: list[FailedAccount]  # the first FAILED_ACCOUNTS_LISTED by account id

    @property
    def success_rate(self) -> float:
        return _rate(self.counts[ProcessingStatus.SUCCESSFUL.value], self.total_accounts)

    @property
    def failure_rate(self) -> float:
        return _rate(self.counts[ProcessingStatus.FAILED.value], self.total_accounts)


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def exact_average(total: Decimal | None, count: int) -> Decimal | None:
    """A DECIMAL sum over its count, rounded half-up to cents like the scores themselves."""
    return (Decimal(total) / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None


def build_daily_summary(connection: duckdb.DuckDBPyConnection, day: date) -> DailySummary:
    """Aggregate the day's rows of the file in DuckDB; only aggregates and a bounded list reach Python."""
    parameters = {"day": day}
    counts = {status.value: 0 for status in ProcessingStatus}
    for status, count in connection.execute(
        f"SELECT r.processing_status, count(*) {_DAY_ROWS} GROUP BY 1", parameters
    ).fetchall():
        counts[status] = count

    # Sums of DECIMALs are exact; dividing in Python keeps the averages exact
    # (avg() would go through a float).
    sums_and_counts = connection.execute(
        f"SELECT {', '.join(f'sum(r.{column}), count(r.{column})' for column in PILLARS.values())} "
        f"{_DAY_ROWS} AND r.processing_status <> 'Failed'",
        parameters,
    ).fetchone()
    average_scores = {
        pillar: exact_average(total_score, count)
        for pillar, total_score, count in zip(PILLARS, sums_and_counts[0::2], sums_and_counts[1::2])
    }

    focus = {pillar: 0 for pillar in FOCUS_PILLARS}
    focus[NOT_AVAILABLE] = 0
    for pillar, count in connection.execute(
        f"SELECT CASE WHEN r.processing_status = 'Failed' THEN NULL ELSE r.primary_focus END, count(*) "
        f"{_DAY_ROWS} GROUP BY 1",
        parameters,
    ).fetchall():
        focus[pillar or NOT_AVAILABLE] += count

    (failed_total,) = connection.execute(
        f"SELECT count(*) {_DAY_ROWS} AND r.processing_status = 'Failed'", parameters
    ).fetchone()
    failed = [
        FailedAccount(account_id, reason, http_status)
        for account_id, reason, http_status in connection.execute(
            f"SELECT r.account_id, r.error_reason, r.http_status {_DAY_ROWS} "
            "AND r.processing_status = 'Failed' ORDER BY r.account_id LIMIT $limit",
            {**parameters, "limit": FAILED_ACCOUNTS_LISTED},
        ).fetchall()
    ]
    return DailySummary(
        partition_date=day,
        total_accounts=sum(counts.values()),
        counts=counts,
        average_scores=average_scores,
        primary_focus=focus,
        score_histograms=_score_histograms(connection, day),
        failed_total=failed_total,
        failed_accounts=failed,
    )


def _score_histograms(connection: duckdb.DuckDBPyConnection, day: date) -> dict[str, list[int]]:
    """Accounts per score bin and pillar, binned by DuckDB: one row per (pillar, bin) comes back."""
    per_pillar = " UNION ALL ".join(
        f"SELECT '{pillar}' AS pillar, "
        f"least(CAST(floor(r.{column} / {HISTOGRAM_BIN_WIDTH}) AS INTEGER), {HISTOGRAM_BINS - 1}) AS bin, "
        f"count(*) AS accounts {_DAY_ROWS} AND r.{column} IS NOT NULL GROUP BY ALL"
        for pillar, column in PILLARS.items()
    )
    histograms = {pillar: [0] * HISTOGRAM_BINS for pillar in PILLARS}
    for pillar, bin_index, accounts in connection.execute(per_pillar, {"day": day}).fetchall():
        histograms[pillar][bin_index] = accounts
    return histograms
