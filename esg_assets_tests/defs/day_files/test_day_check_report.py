"""The day's check report travels with its files: the summary (HTML, Markdown, JSON) and the sealed manifest
list the four checks with their outcomes, the same as Dagster recorded them."""

import json
import re
from html.parser import HTMLParser

import pytest
from dagster import DagsterInstance, materialize

from esg_assets.config.resources import dagster_resources
from esg_assets.core.file_names import summary_file_name
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.store import report_store_for
from esg_assets.lib.report_store.verification import committed_manifest, verify_day
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS, DAY, live_set

pytestmark = pytest.mark.integration

CHECKS = ["failure_rate", "completeness", "file_format", "reconciliation"]


class _ChecksTable(HTMLParser):
    """The rows of the summary page's checks table, as cell texts."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = False
        self._cell: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("class") == "checks":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif self._in_table and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell.split()))
            self._cell = None


def test_the_summary_and_the_manifest_list_the_four_checks_with_their_outcomes(job_environment):
    # 20% of the accounts Failed: failure_rate fails (threshold 5%), the file is still published.
    config = SandboxConfig(accounts=60, seed=31, failure_rate=0.2, ams_noise=False)
    with SandboxServer(config) as sandbox, DagsterInstance.ephemeral() as instance:
        paths = job_environment(sandbox, ESG_RECONCILIATION_SAMPLE="5")
        result = materialize(
            ALL_ASSETS, partition_key=DAY.isoformat(), resources=dagster_resources(), instance=instance
        )
        assert result.success
        recorded = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert recorded == {
        "failure_rate": False,
        "completeness": True,
        "file_format": True,
        "reconciliation": True,
    }

    store = report_store_for(f"file://{paths['output']}")
    keyring = key_file_keyring(load_key_ring(paths["key_file"]))
    manifest = committed_manifest(store, keyring, DAY)  # its seal holds
    assert verify_day(store, keyring, DAY).problems == []
    assert [check.name for check in manifest.checks] == CHECKS
    assert {check.name: check.passed for check in manifest.checks} == recorded
    failure_rate = manifest.checks[0]
    assert (failure_rate.asset, failure_rate.severity, failure_rate.blocking) == (
        "esg_ratings",
        "ERROR",
        False,
    )
    assert failure_rate.metadata["accounts"] == 60 and failure_rate.metadata["threshold"] == 0.05
    assert failure_rate.metadata["failed"] == manifest.rows_by_status["Failed"] >= 4
    assert [check.blocking for check in manifest.checks] == [False, True, True, False]
    assert manifest.checks[3].metadata["compared"] + manifest.checks[3].metadata["not_refetched"] == 5

    files = live_set(paths["output"])
    document = json.loads(files[summary_file_name(DAY, "json")].read_text())
    # The summary has the same report, with the texts that name accounts; the manifest holds no account id.
    numbers_only = [
        {
            **check,
            "metadata": {k: v for k, v in check["metadata"].items() if k not in ("examples", "details")},
        }
        for check in document["checks"]
    ]
    assert numbers_only == [check.to_document() for check in manifest.checks]
    assert document["checks"][1]["metadata"]["examples"] == "none"
    assert "details" in document["checks"][3]["metadata"]
    manifest_text = (paths["output"] / "FirmESGRatings_20261120.manifest.json").read_text()
    assert "ACC-" not in manifest_text

    markdown = files[summary_file_name(DAY, "md")].read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    assert rows["failure_rate"].startswith("| failure_rate | esg_ratings | FAILED | ERROR | no | failed: ")
    for name in CHECKS[1:]:
        assert re.match(rf"\| {name} \| ratings_file \| passed \| ERROR \| (yes|no) \| ", rows[name]), name

    table = _ChecksTable()
    table.feed(files[summary_file_name(DAY, "html")].read_text())
    header, *checks = table.rows
    assert header == ["Check", "On", "Outcome", "Severity", "Blocking", "Numbers"]
    assert [(row[0], row[2], row[4]) for row in checks] == [
        ("failure_rate", "FAILED", "no"),
        ("completeness", "passed", "yes"),
        ("file_format", "passed", "yes"),
        ("reconciliation", "passed", "no"),
    ]
    assert f"failed: {failure_rate.metadata['failed']}; accounts: 60" in checks[0][5]
