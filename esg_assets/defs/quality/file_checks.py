"""Reads a staged ratings file back and checks it: strict format, and each active account exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from esg_assets.core.ratings.ratings_csv import RatingsCsvError, parse_ratings_csv
from esg_assets.lib.crypto.keyring import Keyring
from esg_assets.lib.crypto.messages import DecryptionError, FileIdentity, decrypting_reader

_EXAMPLES = 20


@dataclass
class PublishedFileReport:
    """What reading the published file back found."""

    rows: int = 0
    format_problem: str | None = None  # the first problem that stopped the read, if any
    missing_accounts: int = 0  # active accounts of the day without a row
    unexpected_rows: int = 0  # rows of accounts that are not in the day's snapshot
    duplicate_rows: int = 0  # rows repeating (or out of Account ID order after) an earlier account
    examples: list[str] = field(default_factory=list)  # account ids, for the check's metadata
    sampled_rows: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.format_problem is None and not (
            self.missing_accounts or self.unexpected_rows or self.duplicate_rows
        )

    def describe_gaps(self) -> str:
        """The completeness problems in a line: counts, then the first examples."""
        counts = (
            f"{self.missing_accounts} accounts missing, {self.unexpected_rows} unexpected rows, "
            f"{self.duplicate_rows} repeated or out-of-order rows"
        )
        return counts + (f" (e.g. {', '.join(self.examples[:5])})" if self.examples else "")

    def _example(self, text: str) -> None:
        if len(self.examples) < _EXAMPLES:
            self.examples.append(text)


def read_back_published_file(
    encrypted: BinaryIO,
    keyring: Keyring,
    identity: FileIdentity,
    snapshot_ids: Iterable[str],
    sample_ids: Iterable[str] = (),
) -> PublishedFileReport:
    """Decrypt (as ``identity``) and parse the file as a stream, comparing its Account IDs to the snapshot's.

    ``sampled_rows`` returns the file's rows of ``sample_ids`` for reconciliation with the API.
    """
    report = PublishedFileReport()
    wanted = set(sample_ids)
    expected: Iterator[str] = iter(snapshot_ids)
    next_expected = next(expected, None)
    previous: str | None = None
    try:
        for row in parse_ratings_csv(decrypting_reader(encrypted, keyring, identity)):
            report.rows += 1
            account_id = row["Account ID"]
            if previous is not None and account_id <= previous:
                report.duplicate_rows += 1
                report._example(f"{account_id} after {previous}")
                continue
            previous = account_id
            while next_expected is not None and next_expected < account_id:
                report.missing_accounts += 1
                report._example(f"missing {next_expected}")
                next_expected = next(expected, None)
            if next_expected == account_id:
                next_expected = next(expected, None)
            else:
                report.unexpected_rows += 1
                report._example(f"unexpected {account_id}")
            if account_id in wanted:
                report.sampled_rows[account_id] = row
    except (DecryptionError, RatingsCsvError) as problem:
        report.format_problem = str(problem)
        return report
    while next_expected is not None:
        report.missing_accounts += 1
        report._example(f"missing {next_expected}")
        next_expected = next(expected, None)
    return report
