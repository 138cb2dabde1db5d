"""The day's summary: counts by status, average scores, Primary ESG Focus distribution and failed accounts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb

from esg_assets.ratings.model import ProcessingStatus

# The Markdown shown in the Dagster UI lists this many failed accounts; the JSON file lists all of them.
FAILED_ACCOUNTS_IN_MARKDOWN = 50


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
    failed_accounts: list[FailedAccount]

    @property
    def success_rate(self) -> float:
        return self.counts[ProcessingStatus.SUCCESSFUL.value] / self.total_accounts if self.total_accounts else 0.0

    @property
    def failure_rate(self) -> float:
        return self.counts[ProcessingStatus.FAILED.value] / self.total_accounts if self.total_accounts else 0.0

    def to_json(self) -> str:
        document = asdict(self)
        document["success_rate"] = self.success_rate
        document["failure_rate"] = self.failure_rate
        return json.dumps(document, default=_json_value, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [
            f"# ESG ratings summary for {self.partition_date.isoformat()}",
            "",
            f"**{self.total_accounts:,} active accounts**, success rate **{self.success_rate:.2%}**, "
            f"failure rate **{self.failure_rate:.2%}**.",
            "",
            "| Processing Status | Accounts | Share |",
            "|---|---:|---:|",
        ]
        for status in ProcessingStatus:
            count = self.counts[status.value]
            lines.append(f"| {status.value} | {count:,} | {_share(count, self.total_accounts)} |")
        lines += ["", "| Average score | Value |", "|---|---:|"]
        for pillar, average in self.average_scores.items():
            lines.append(f"| {pillar} | {'N/A' if average is None else average} |")
        lines += ["", "| Primary ESG Focus | Accounts | Share |", "|---|---:|---:|"]
        for pillar, count in self.primary_focus.items():
            lines.append(f"| {pillar} | {count:,} | {_share(count, self.total_accounts)} |")
        lines += ["", f"## Failed accounts ({len(self.failed_accounts):,})", ""]
        if not self.failed_accounts:
            lines.append("None.")
        else:
            lines += ["| Account ID | HTTP status | Reason |", "|---|---:|---|"]
            for failed in self.failed_accounts[:FAILED_ACCOUNTS_IN_MARKDOWN]:
                reason = (failed.reason or "").replace("|", "\\|")
                lines.append(f"| {failed.account_id} | {failed.http_status or ''} | {reason} |")
            if len(self.failed_accounts) > FAILED_ACCOUNTS_IN_MARKDOWN:
                more = len(self.failed_accounts) - FAILED_ACCOUNTS_IN_MARKDOWN
                lines.append(f"\n... and {more:,} more: the summary's JSON file lists every one.")
        return "\n".join(lines) + "\n"


def _share(count: int, total: int) -> str:
    return f"{count / total:.2%}" if total else "n/a"


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_PILLARS = {"Overall": "overall", "Environmental": "environmental", "Social": "social", "Governance": "governance"}


def build_daily_summary(connection: duckdb.DuckDBPyConnection, day: date) -> DailySummary:
    """Aggregate the day's rows of the file (the snapshot joined with its ratings) in DuckDB."""
    rows = """
        FROM account_snapshots s JOIN esg_ratings r
          ON r.partition_date = s.partition_date AND r.account_id = s.account_id
        WHERE s.partition_date = $day
    """
    counts = {status.value: 0 for status in ProcessingStatus}
    for status, count in connection.execute(
        f"SELECT r.processing_status, count(*) {rows} GROUP BY 1", {"day": day}
    ).fetchall():
        counts[status] = count
    total = sum(counts.values())

    # Sums of DECIMALs are exact; dividing here keeps the averages exact decimals, rounded half-up like scores.
    sums_and_counts = connection.execute(
        f"SELECT {', '.join(f'sum(r.{column}), count(r.{column})' for column in _PILLARS.values())} {rows}"
        " AND r.processing_status <> 'Failed'",
        {"day": day},
    ).fetchone()
    average_scores = {
        pillar: (Decimal(total_score) / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
        for pillar, total_score, count in zip(_PILLARS, sums_and_counts[0::2], sums_and_counts[1::2])
    }

    focus = {pillar: 0 for pillar in ("Environmental", "Social", "Governance")}
    focus["N/A"] = 0
    for pillar, count in connection.execute(
        f"SELECT CASE WHEN r.processing_status = 'Failed' THEN NULL ELSE r.primary_focus END, count(*) {rows} "
        "GROUP BY 1",
        {"day": day},
    ).fetchall():
        focus[pillar or "N/A"] += count

    failed = [
        FailedAccount(account_id, reason, http_status)
        for account_id, reason, http_status in connection.execute(
            f"SELECT r.account_id, r.error_reason, r.http_status {rows} AND r.processing_status = 'Failed' "
            "ORDER BY r.account_id",
            {"day": day},
        ).fetchall()
    ]
    return DailySummary(day, total, counts, average_scores, focus, failed)
