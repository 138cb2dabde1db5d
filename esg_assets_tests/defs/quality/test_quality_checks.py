"""The day's checks: failure threshold, completeness, format and reconciliation find what they should."""

import io
from datetime import date
from decimal import Decimal

import pytest

from esg_assets.core.ratings.model import ProcessingStatus, RatingResult, RatingValues
from esg_assets.core.ratings.ratings_csv import HEADER, write_ratings_csv
from esg_assets.defs.quality.check_results import failure_rate_result
from esg_assets.defs.quality.file_checks import read_back_published_file
from esg_assets.defs.quality.reconciliation import reconcile
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import KeyRing
from esg_assets.lib.crypto.messages import FRAME_LENGTH, FileIdentity, encrypting_writer

pytestmark = pytest.mark.unit

KEYS = key_file_keyring(KeyRing({"k-test": bytes(range(32))}, "k-test"))
IDENTITY = FileIdentity("FirmESGRatings_20261121.csv", date(2026, 11, 21), "ratings", 1, "run-1")
GOOD = (Decimal("71.25"), Decimal("68.40"), Decimal("74.10"), Decimal("71.90"), "Social", Decimal("74.10"),
        date(2026, 11, 21), "Successful")  # fmt: skip


def encrypted(content: bytes, identity: FileIdentity = IDENTITY) -> io.BytesIO:
    sink = io.BytesIO()
    with encrypting_writer(sink, KEYS, identity) as writer:
        writer.write(content)
    sink.seek(0)
    return sink


def encrypted_rows(account_ids: list[str], identity: FileIdentity = IDENTITY) -> io.BytesIO:
    plaintext = io.BytesIO()
    write_ratings_csv([(account_id, f"Name {account_id}", *GOOD) for account_id in account_ids], plaintext)
    return encrypted(plaintext.getvalue(), identity)


def test_a_file_with_every_account_once_is_complete_and_returns_the_sampled_rows():
    report = read_back_published_file(encrypted_rows(["A", "B", "C"]), KEYS, IDENTITY, ["A", "B", "C"], ["B"])
    assert report.complete and report.rows == 3
    assert report.sampled_rows["B"]["Social Score"] == "74.10"


@pytest.mark.parametrize(
    ("in_file", "snapshot", "missing", "unexpected", "duplicate"),
    [
        (["A", "C"], ["A", "B", "C"], 1, 0, 0),
        (["A", "B", "C", "D"], ["A", "B", "C"], 0, 1, 0),
        (["A", "B", "B", "C"], ["A", "B", "C"], 0, 0, 1),
        (["B", "A", "C"], ["A", "B", "C"], 1, 0, 1),  # out of order: A after B is reported, A is missing
        ([], ["A"], 1, 0, 0),
    ],
)
def test_incomplete_files_are_counted(in_file, snapshot, missing, unexpected, duplicate):
    report = read_back_published_file(encrypted_rows(in_file), KEYS, IDENTITY, snapshot)
    assert not report.complete
    assert (report.missing_accounts, report.unexpected_rows, report.duplicate_rows) == (
        missing,
        unexpected,
        duplicate,
    )
    assert report.examples


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"Account ID,Name\r\n", "header"),
        (",".join(HEADER).encode() + b"\r\nA,Name,71.2,N/A,N/A,N/A,N/A,N/A,N/A,Partial\r\n", "two decimals"),
        (",".join(HEADER).encode() + b"\nA,Name,N/A,N/A,N/A,N/A,N/A,N/A,N/A,Failed\n", "line"),
    ],
)
def test_format_problems_are_named(content, problem):
    report = read_back_published_file(encrypted(content), KEYS, IDENTITY, ["A"])
    assert report.format_problem is not None and problem in report.format_problem
    assert not report.complete


@pytest.mark.parametrize("offset", [-5, 600], ids=["signature", "frame"])
def test_a_tampered_published_file_fails_the_format_check(offset):
    file = bytearray(encrypted_rows(["A", "B"]).getvalue())
    file[offset] ^= 1
    report = read_back_published_file(io.BytesIO(bytes(file)), KEYS, IDENTITY, ["A", "B"])
    assert "authentication failed" in report.format_problem
    assert not report.complete


def test_a_truncated_published_file_fails_the_format_check():
    ids = [f"ACC-{number:07d}" for number in range(1, 2001)]  # about three frames of rows
    file = encrypted_rows(ids).getvalue()
    assert len(file) > 2 * FRAME_LENGTH
    report = read_back_published_file(io.BytesIO(file[: 2 * FRAME_LENGTH]), KEYS, IDENTITY, ids)
    assert "truncated" in report.format_problem
    assert not report.complete


def test_the_file_of_another_day_fails_the_format_check_naming_the_day():
    yesterday = FileIdentity("FirmESGRatings_20261120.csv", date(2026, 11, 20), "ratings", 1, "run-1")
    report = read_back_published_file(encrypted_rows(["A", "B"], yesterday), KEYS, IDENTITY, ["A", "B"])
    assert report.rows == 0 and not report.complete
    assert "its partition_day is '2026-11-20', not '2026-11-21'" in report.format_problem
    assert "its file_name is 'FirmESGRatings_20261120.csv'" in report.format_problem


def result(account_id: str, social: str | None, status=ProcessingStatus.SUCCESSFUL) -> RatingResult:
    values = None
    if social is not None:
        values = RatingValues(GOOD[0], GOOD[1], Decimal(social), *GOOD[3:7])
    return RatingResult(account_id, values, status, None, 1, 200, None, False, None)


def test_reconciliation_names_each_mismatching_column():
    file_rows = {"A": dict(zip(HEADER, ["A", "Name A", "71.25", "68.40", "74.10", "71.90", "Social", "74.10",
                                        "2026-11-21", "Successful"]))}  # fmt: skip
    assert reconcile(file_rows, lambda account_id: result(account_id, "74.10")).passed
    report = reconcile(file_rows, lambda account_id: result(account_id, "74.20"))
    assert report.mismatches == ["A: Social Score file '74.10', API '74.20'"]
    not_refetched = reconcile(file_rows, lambda account_id: result(account_id, None, ProcessingStatus.FAILED))
    assert not_refetched.passed and not_refetched.compared == 0 and len(not_refetched.not_refetched) == 1


@pytest.mark.parametrize(("failed", "passed"), [(5, True), (6, False), (0, True)])
def test_failure_rate_threshold_is_inclusive_at_five_percent(failed, passed):
    counts = {"Successful": 100 - failed, "Partial": 0, "Failed": failed}
    check = failure_rate_result(counts, 0.05)
    assert check.passed is passed
    assert check.metadata["failure_rate"].value == failed / 100
