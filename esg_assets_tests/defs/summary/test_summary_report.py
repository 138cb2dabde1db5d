"""The daily summary report: the figures, the self-contained HTML, day over day, trends, history and email."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from esg_assets.cli.report import main as report_main
from esg_assets.config.environment import now
from esg_assets.config.resources import summary_email
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.day_files.day_files import day_files
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.defs.summary.charts import draw_charts
from esg_assets.defs.summary.summary_html import to_html
from esg_assets.defs.summary.summary_markdown import to_markdown
from esg_assets.defs.summary.summary_report import build_summary_report
from esg_assets.lib.access.caller import SudoUser
from esg_assets.lib.audit.resource import AuditTrailResource
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource
from esg_assets.lib.report_store.manifest import Manifest
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.lib.warehouse.run_statistics import (
    FetchRunStatistics,
    RunHistoryRow,
    record_fetch_run,
    record_run_history,
)
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import materialized, run_day
from esg_assets_tests.support.smtp_server import SmtpServer, make_certificates
from esg_assets_tests.support.warehouses import warehouse_at

DAY = date(2026, 11, 24)
PREVIOUS = DAY - timedelta(days=1)
HOSTILE_REASON = '<script>alert("pwned")</script> "><img src=x onerror=alert(1)> | **bold**'
SMTP_USER = "esg-summary"
SMTP_PASSWORD = "Summ4ry-pa55-that-must-not-leak"

# account id -> (status, overall, environmental, social, governance, primary focus, reason, http status)
PREVIOUS_DAY = {
    "A-1": ("Successful", "50.00", "40.00", "60.00", "50.00", "Social", None, 200),
    "B-2": ("Successful", "60.00", "60.00", "60.00", "60.00", "Environmental", None, 200),
    "C-3": ("Successful", "70.00", "70.00", "70.00", "70.00", "Governance", None, 200),
    "D-4": ("Successful", "80.00", "80.00", "80.00", "80.00", "Governance", None, 200),
    "F-6": ("Failed", None, None, None, None, None, "HTTP 503 after 3 attempts", 503),
}
THIS_DAY = {
    "B-2": ("Successful", "65.00", "60.00", "70.00", "65.00", "Social", None, 200),  # +5
    "C-3": ("Partial", "40.00", "30.00", None, "50.00", None, "social: null", 200),  # -30
    "D-4": ("Successful", "80.00", "80.00", "80.00", "80.00", "Governance", None, 200),  # unchanged
    "E-5": ("Successful", "100.00", "95.00", "99.99", "0.00", "Environmental", None, 200),  # new
    "F-6": ("Failed", None, None, None, None, None, HOSTILE_REASON, 502),
}


def account_name(account_id: str) -> str:
    return f"Confidential Holder {account_id} Pension Plan"


def seed_day(connection: duckdb.DuckDBPyConnection, day: date, accounts: dict, run_id: str) -> None:
    now = datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc)
    for account_id, (status, overall, env, social, gov, focus, reason, http) in accounts.items():
        connection.execute(
            "INSERT INTO account_snapshots VALUES (?, ?, ?, ?, ?)",
            [day, account_id, account_name(account_id), now, now],
        )
        connection.execute(
            "INSERT INTO esg_ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, NULL, false, ?, ?)",
            [
                day,
                account_id,
                overall,
                env,
                social,
                gov,
                focus,
                overall,
                day,
                status,
                reason,
                http,
                now,
                run_id,
            ],
        )


def fetch_run(day: date, run_id: str, started: datetime, seconds: float, requests: int) -> FetchRunStatistics:
    return FetchRunStatistics(
        partition_date=day,
        run_id=run_id,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        accounts_total=5,
        accounts_fetched=5,
        accounts_resumed=0,
        api_requests=requests,
        retries=3,
        throttled=2,
        not_modified=4,
        requests_per_second=requests / seconds,
    )


def history_row(
    day: date, run_id: str, duration: float, successful: int, failed: int, rps: float
) -> RunHistoryRow:
    started = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=11)
    return RunHistoryRow(
        partition_date=day,
        run_id=run_id,
        started_at=started,
        finished_at=started + timedelta(seconds=duration),
        duration_seconds=duration,
        accounts=successful + failed,
        successful=successful,
        partial=0,
        failed=failed,
        api_requests=100,
        retries=1,
        throttled=0,
        not_modified=10,
        throughput_per_second=rps,
    )


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    """Two small days, yesterday with its run history, and 60 older days of history only."""
    resource = warehouse_at(str(tmp_path / "warehouse.duckdb"))
    with resource.connect() as connection:
        seed_day(connection, PREVIOUS, PREVIOUS_DAY, "run-previous")
        seed_day(connection, DAY, THIS_DAY, "run-today")
        started = datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc)
        record_fetch_run(connection, fetch_run(DAY, "run-today", started, seconds=8.0, requests=40))
        # 30 days (the previous day and the 29 before it) at 200 s, and 30 days before those at 100 s.
        for back in range(1, 61):
            duration = 200.0 if back <= 30 else 100.0
            record_run_history(
                connection, history_row(DAY - timedelta(days=back), f"h{back}", duration, 9, 1, 20.0)
            )
        # A re-run of the previous day that asked for nothing: the day's main run is still the one above.
        rerun = history_row(PREVIOUS, "rerun", 5.0, 9, 1, 0.0)
        rerun = replace(rerun, api_requests=0, finished_at=rerun.finished_at + timedelta(hours=1))
        record_run_history(connection, rerun)
    return resource


def the_report(warehouse: WarehouseResource):
    with warehouse.connect() as connection:
        return build_summary_report(connection, DAY, "run-today")


class _Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []  # every src and href
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "action")]


def parsed_html(page: str) -> _Attributes:
    parser = _Attributes()
    parser.feed(page)
    return parser


# --- the figures -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_summary_counts_averages_focus_and_histograms(warehouse):
    summary = the_report(warehouse).summary
    assert summary.total_accounts == 5
    assert summary.counts == {"Successful": 3, "Partial": 1, "Failed": 1}
    assert summary.success_rate == pytest.approx(0.6)
    # Over Successful and Partial rows that hold the score; exact decimals rounded half-up.
    assert summary.average_scores == {
        "Overall": Decimal("71.25"),
        "Environmental": Decimal("66.25"),
        "Social": Decimal("83.33"),
        "Governance": Decimal("48.75"),
    }
    assert summary.primary_focus == {"Environmental": 1, "Social": 1, "Governance": 1, "N/A": 2}
    # 40, 65, 80 and 100 (the top bin is closed, so 100 falls in 90-100); Governance 0.00 in the first bin.
    assert summary.score_histograms["Overall"] == [0, 0, 0, 0, 1, 0, 1, 0, 1, 1]
    assert summary.score_histograms["Governance"][0] == 1
    assert [failed.account_id for failed in summary.failed_accounts] == ["F-6"]


@pytest.mark.integration
def test_day_over_day_new_and_closed_accounts_and_the_biggest_movers(warehouse):
    changes = the_report(warehouse).changes
    assert changes.previous_date == PREVIOUS
    assert (changes.new_accounts, changes.new_account_ids) == (1, ("E-5",))
    assert (changes.closed_accounts, changes.closed_account_ids) == (1, ("A-1",))
    # Largest change first, either way; unchanged and unrated accounts are not movers.
    assert [(m.account_id, m.change) for m in changes.movers] == [
        ("C-3", Decimal("-30.00")),
        ("B-2", Decimal("5.00")),
    ]
    assert changes.previous_total_accounts == 5
    assert changes.previous_success_rate == pytest.approx(0.8)
    assert changes.previous_average_overall == Decimal("65.00")


@pytest.mark.integration
def test_the_first_day_has_nothing_to_compare_with(tmp_path):
    resource = warehouse_at(str(tmp_path / "warehouse.duckdb"))
    with resource.connect() as connection:
        seed_day(connection, DAY, THIS_DAY, "run-today")
    report = the_report(resource)
    assert report.changes.previous_date is None
    assert report.performance is None
    assert "No earlier day in the warehouse" in to_markdown(report)


@pytest.mark.integration
def test_run_performance_comes_from_this_runs_ratings_fetch(warehouse):
    performance = the_report(warehouse).performance
    assert performance.this_run
    assert performance.fetch_seconds == pytest.approx(8.0)
    assert (performance.fetch.api_requests, performance.fetch.retries) == (40, 3)
    assert (performance.fetch.throttled, performance.fetch.not_modified) == (2, 4)
    assert performance.fetch.requests_per_second == pytest.approx(5.0)


@pytest.mark.integration
def test_trends_average_each_window_over_the_days_main_runs(warehouse):
    trends = the_report(warehouse).trends
    windows = {window.days: window for window in trends.windows}
    # Today is not in run_history yet and this run's figures stand in for it: 8 s fetch, run time unknown.
    assert windows[30].means["duration_seconds"] == pytest.approx(200.0)  # 29 days of main runs at 200 s
    assert windows[90].means["duration_seconds"] == pytest.approx((30 * 200 + 30 * 100) / 60)
    assert windows[30].means["throughput_per_second"] == pytest.approx((29 * 20.0 + 5.0) / 30)
    # Rates and scores come from the ratings of the two seeded days.
    assert windows[30].means["success_rate"] == pytest.approx((0.8 + 0.6) / 2)
    assert windows[30].means["failure_rate"] == pytest.approx(0.2)
    metadata = trends.metadata()
    assert metadata["trend_30d_duration_seconds"] == pytest.approx(200.0)
    assert metadata["trend_90d_days_with_data"] == 61
    for window in (30, 90):
        for name in ("success_rate", "failure_rate", "throughput_per_second", "average_overall"):
            assert isinstance(metadata[f"trend_{window}d_{name}"], float)


# --- the HTML page -----------------------------------------------------------------------------------


@pytest.mark.integration
def test_html_is_self_contained_with_the_numbers_and_the_charts(warehouse):
    report = the_report(warehouse)
    charts = draw_charts(report)
    page = to_html(report, charts)
    parsed = parsed_html(page)

    assert "script" not in parsed.tags
    assert parsed.links, "the charts are images with a src"
    assert all(link.startswith("data:image/png;base64,") for link in parsed.links), parsed.links
    assert "http://" not in page and "https://" not in page and "url(" not in page
    images = [base64.b64decode(link.split(",", 1)[1]) for link in parsed.links]
    assert len(images) == 4 == len(charts)  # status, focus, histograms, trends
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 2_000 for image in images)

    for figure in (
        "60.00%",
        "71.25",
        "83.33",
        "48.75",
        "-30.00",
        "+5.00",
        "E-5",
        "A-1",
        "F-6",
        "Last 90 days",
    ):
        assert figure in page, figure
    for account_id in PREVIOUS_DAY | THIS_DAY:
        assert "Confidential Holder" not in page


@pytest.mark.integration
def test_a_hostile_failure_reason_is_escaped_in_html_and_markdown(warehouse):
    report = the_report(warehouse)
    page = to_html(report, draw_charts(report))
    assert HOSTILE_REASON not in page
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert parsed_html(page).tags.count("img") == 4  # only the charts

    markdown = to_markdown(report)
    row = next(line for line in markdown.splitlines() if line.startswith("| F-6 "))
    assert "<script>" not in row and "&lt;script&gt;" in row
    assert row.count(" | ") == 2  # the reason's "|" does not open a fourth column
    assert "\\*\\*bold\\*\\*" in row


class _AccountIdCells(HTMLParser):
    """The first cell of each row of the tables whose first column is Account ID, and the page's CSS."""

    def __init__(self):
        super().__init__()
        self.id_cells: list[tuple[str, str]] = []  # (class attribute, text)
        self.css = ""
        self._stack: list[str] = []
        self._first_header: str | None = None
        self._cell_of_row = 0
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        self._stack.append(tag)
        if tag == "table":
            self._first_header = None
        elif tag == "tr":
            self._cell_of_row = 0
        elif tag in ("td", "th"):
            self._cell_of_row += 1
            self._cell = [tag, dict(attrs).get("class") or "", ""] if self._cell_of_row == 1 else None

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "style":
            self.css += data
        elif self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            kind, classes, text = self._cell
            if kind == "th":
                self._first_header = text.strip()
            elif self._first_header == "Account ID":
                self.id_cells.append((classes, text.strip()))
            self._cell = None


@pytest.mark.integration
def test_account_ids_never_wrap_in_the_html_summary(warehouse):
    page = to_html(the_report(warehouse), {})
    cells = _AccountIdCells()
    cells.feed(page)
    # Every Account ID cell (failed accounts, movers) carries the class the no-wrap rule applies to.
    assert {text for _, text in cells.id_cells} >= {"F-6", "C-3", "B-2"}
    assert all("ids" in classes.split() for classes, _ in cells.id_cells), cells.id_cells
    rules = {
        selector.strip(): body
        for selectors, body in re.findall(
            r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", cells.css, flags=re.S)
        )
        for selector in selectors.split(",")
    }
    assert "white-space: nowrap" in rules["td.ids"]
    assert "break-all" not in cells.css  # what used to split an id over two lines
    # In the new / closed lists too, each id is one unbreakable piece.
    assert '<span class="id">E-5</span>' in page and '<span class="id">A-1</span>' in page


# --- the asset ---------------------------------------------------------------------------------------


def materialize_summary(warehouse: WarehouseResource, output: Path, reconciliation_sample: int = 0):
    """The day's files and summary, published from the seeded warehouse (no account is asked of the API)."""
    key_file = output.parent / "keys" / "esg.key"  # made by warehouse_at, with the warehouse's key
    resources = {
        "warehouse": warehouse,
        "report_store": ReportStoreResource(
            output_uri=f"file://{output}",
            encryption_key_file=str(key_file),
            audit=AuditTrailResource(log_dir=str(output.parent / "audit")),
        ),
        "firm_api": FirmApiResource(
            token_url="http://127.0.0.1:9/token",
            client_id="c",
            client_secret="s",
            ams_base_url="http://127.0.0.1:9",
            esg_base_url="http://127.0.0.1:9",
            rate_limit_per_second=1,
            max_in_flight=1,
            http_timeout_seconds=1,
            max_attempts=1,
        ),  # fmt: skip
        "data_quality": DataQualityResource(reconciliation_sample=reconciliation_sample),
        "summary_email": summary_email(now),  # ESG_SUMMARY_EMAIL_TO and ESG_SMTP_* as the test sets them
        "sudo_user": SudoUser(),
        "job_logs": JobLogsResource(log_dir=str(output.parent / "log")),
        "day_run_lock": DayRunLockResource(warehouse_path=warehouse.path),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [day_files], partition_key=DAY.isoformat(), resources=resources, instance=instance
        )
    assert result.success
    return materialized(result, "daily_summary")


def summary_file(output: Path, extension: str) -> Path:
    """The day's live summary file, where its manifest says it is."""
    manifest = Manifest.from_json((output / "FirmESGRatings_20261124.manifest.json").read_bytes())
    (entry,) = [entry for entry in manifest.files if entry.name == f"FirmESGSummary_20261124.{extension}"]
    return output / entry.path


@pytest.mark.integration
def test_the_asset_publishes_html_markdown_and_json_with_trend_metadata(warehouse, tmp_path, monkeypatch):
    monkeypatch.delenv("ESG_SUMMARY_EMAIL_TO", raising=False)
    metadata = materialize_summary(warehouse, tmp_path / "reports")

    manifest = Manifest.from_json(
        (tmp_path / "reports" / "FirmESGRatings_20261124.manifest.json").read_bytes()
    )
    assert [entry.name for entry in manifest.files if entry.kind == "summary"] == [
        "FirmESGSummary_20261124.html",
        "FirmESGSummary_20261124.md",
        "FirmESGSummary_20261124.json",
    ]
    for key, value in {
        "total_accounts": 5,
        "successful": 3,
        "partial": 1,
        "failed": 1,
        "new_accounts": 1,
    }.items():
        assert metadata[key].value == value
    assert metadata["success_rate"].value == pytest.approx(0.6)
    assert metadata["failure_rate"].value == pytest.approx(0.2)
    assert "# ESG ratings summary for 2026-11-24" in metadata["summary"].value
    assert metadata["trend_30d_duration_seconds"].value == pytest.approx(200.0)
    assert metadata["trend_90d_success_rate"].value == pytest.approx(0.7)
    assert metadata["throttled_429"].value == 2 and metadata["not_modified_304"].value == 4
    assert metadata["email_status"].value == "off"

    document = json.loads(summary_file(tmp_path / "reports", "json").read_text())
    assert document["counts"] == {"Successful": 3, "Partial": 1, "Failed": 1}
    assert document["average_scores"]["Overall"] == "71.25"
    assert [m["account_id"] for m in document["changes"]["movers"]] == ["C-3", "B-2"]
    assert document["failed_accounts"] == [
        {"account_id": "F-6", "reason": HOSTILE_REASON, "http_status": 502}
    ]
    assert document["trends"]["windows"]["30d"]["means"]["duration_seconds"] == pytest.approx(200.0)


@pytest.mark.integration
def test_a_reconciliation_that_cannot_reach_the_api_fails_its_check_and_the_files_are_still_published(
    warehouse, tmp_path, monkeypatch
):
    # The API is asked again before the commit; here no token can be had (nothing listens on port 9).
    monkeypatch.delenv("ESG_SUMMARY_EMAIL_TO", raising=False)
    materialize_summary(warehouse, tmp_path / "reports", reconciliation_sample=2)
    document = json.loads(summary_file(tmp_path / "reports", "json").read_text())
    checks = {check["name"]: check for check in document["checks"]}
    assert not checks["reconciliation"]["passed"]
    assert checks["reconciliation"]["metadata"]["details"].startswith("not run: ")
    assert checks["completeness"]["passed"] and checks["file_format"]["passed"]
    manifest = Manifest.from_json(
        (tmp_path / "reports" / "FirmESGRatings_20261124.manifest.json").read_bytes()
    )
    assert [(check.name, check.passed) for check in manifest.checks][3] == ("reconciliation", False)


# --- esg-report history ------------------------------------------------------------------------------


def esg_report(*args: str, warehouse_path: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it: its own process, which DuckDB's file lock tells apart from ours."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ESG_")}
    return subprocess.run(
        [sys.executable, "-m", "esg_assets.cli.report", *args],
        env={
            **environment,
            "ESG_WAREHOUSE_PATH": warehouse_path,
            "ESG_ENCRYPTION_KEY_FILE": str(Path(warehouse_path).parent / "keys" / "esg.key"),
            "PYTHONPATH": str(REPO_ROOT),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def history(monkeypatch, capsys):
    """``esg-report history`` in-process (a new process pays seconds to import Dagster): (code, out, err)."""

    def run(*args: str, warehouse_path: str) -> tuple[int, str, str]:
        monkeypatch.setenv("ESG_WAREHOUSE_PATH", warehouse_path)
        monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", str(Path(warehouse_path).parent / "keys" / "esg.key"))
        code = report_main(["history", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.integration
def test_history_prints_a_line_per_day_and_the_averages(warehouse, history):
    code, out, err = history("--days", "3", "--until", DAY.isoformat(), warehouse_path=warehouse.path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "ESG ratings job, last 3 days to 2026-11-24: 3 with data (first 2026-11-22)"
    assert lines[1].split() == [
        "day", "runs", "duration", "accounts", "success", "partial", "failed",
        "req/s", "retries", "429s", "304s", "overall",
    ]  # fmt: skip
    # The previous day: two runs, the main one (3:20, 20 req/s) shown, its ratings 4 of 5 Successful.
    assert lines[3].split() == [
        "2026-11-23", "2", "3:20", "5", "80.00%", "0", "20.00%", "20.0", "1", "0", "10", "65.00",
    ]  # fmt: skip
    # Today: ratings, no recorded run yet.
    assert lines[4].split()[:7] == ["2026-11-24", "0", "n/a", "5", "60.00%", "1", "20.00%"]
    assert lines[-1].startswith("averages per day: success 70.00%, failure 20.00%, duration 3:20")


@pytest.mark.integration
def test_history_says_clearly_that_a_running_job_holds_the_warehouse(warehouse):
    with warehouse.connect():  # a writer, as the job is during a run
        result = esg_report("history", "--days", "7", warehouse_path=warehouse.path)
    assert result.returncode == 1
    assert f"locked by process {os.getpid()}" in result.stderr
    assert "Try again when the run has finished" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.unit
def test_history_without_a_warehouse_names_the_setting(tmp_path, history):
    code, _, err = history(warehouse_path=str(tmp_path / "none.duckdb"))
    assert code == 1
    assert err.startswith("esg-report: error: no warehouse at ") and "ESG_WAREHOUSE_PATH" in err


# --- the summary by email ----------------------------------------------------------------------------


@pytest.fixture
def smtp_relay(tmp_path, monkeypatch):
    certificates = make_certificates(tmp_path)
    with SmtpServer(certificates, SMTP_USER, SMTP_PASSWORD) as server:
        for name, value in {
            "ESG_SMTP_HOST": "127.0.0.1",
            "ESG_SMTP_PORT": str(server.port),
            "ESG_SMTP_USER": SMTP_USER,
            "ESG_SMTP_PASSWORD": SMTP_PASSWORD,
            "ESG_SMTP_SECURITY": "starttls",
            "ESG_SMTP_CA_FILE": str(certificates.ca_file),
            "ESG_ALERT_EMAIL_FROM": "esg-job@firm.example",
            "ESG_SUMMARY_EMAIL_TO": "compliance@firm.example, admins@firm.example",
        }.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.mark.e2e
def test_the_days_run_emails_the_summary_over_starttls_without_account_names(job_environment, smtp_relay):
    with SandboxServer(SandboxConfig(accounts=40, seed=3, failure_rate=0.1, partial_rate=0.1)) as sandbox:
        job_environment(sandbox)
        result = run_day(DAY)
        names = [name for _, name in sandbox.data.expected_active_accounts()]

    metadata = materialized(result, "daily_summary")
    assert metadata["email_status"].value == "sent"
    [mail] = smtp_relay.delivered
    assert mail.recipients == ["compliance@firm.example", "admins@firm.example"]
    assert mail.message["Subject"].startswith("ESG ratings summary 2026-11-24: ")
    html_body = mail.message.get_body(("html",)).get_content()
    text_body = mail.message.get_body(("plain",)).get_content()
    assert f"{metadata['total_accounts'].value:,}" in html_body
    # The charts travel as inline parts the HTML refers to by Content-ID.
    images = [part for part in mail.message.walk() if part.get_content_type() == "image/png"]
    content_ids = [part["Content-ID"].strip().strip("<>") for part in images]
    assert len(content_ids) == 4
    assert sorted(parsed_html(html_body).links) == sorted(f"cid:{cid}" for cid in content_ids)
    for name in names:
        for body in (html_body, text_body):
            assert name.strip() not in body and escape(name.strip()) not in body
    assert SMTP_PASSWORD not in mail.raw.decode(errors="replace")


@pytest.mark.integration
def test_a_relay_that_is_down_is_reported_and_the_summary_is_still_published(warehouse, tmp_path, smtp_relay):
    smtp_relay.stop()
    metadata = materialize_summary(warehouse, tmp_path / "reports")
    assert metadata["email_status"].value == "failed"
    assert "ConnectionRefusedError" in metadata["email_detail"].value
    assert SMTP_PASSWORD not in metadata["email_detail"].value
    assert summary_file(tmp_path / "reports", "html").exists()
