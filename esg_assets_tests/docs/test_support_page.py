"""docs/support.md: its severities are the alert kinds' own, and its unfilled contacts can be listed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from esg_assets.defs.alerting.alert_kinds import ALERT_KINDS
from esg_assets_tests.support.doc_blocks import blocks_tested_by, path_of_test
from esg_assets_tests.support.paths import REPO_ROOT

PAGE = "docs/support.md"
THIS_FILE = path_of_test(__file__)
FIELD = re.compile(r"<FIRM: [A-Za-z][^>]*>")  # not the page's own "<FIRM: ...>"
# The severity table: "| **Severity N** | what it means | `critical` (`run_failure`, ...) |"
_ROW = re.compile(r"^\| \*\*Severity \d\*\* \|.*\| `(?P<severity>\w+)` \((?P<kinds>[^)]*)\) \|$")


def page_text() -> str:
    return (REPO_ROOT / PAGE).read_text()


def listing_command() -> str:
    [block] = blocks_tested_by(PAGE, THIS_FILE)
    [command] = block.commands
    return command


@pytest.mark.unit
def test_every_alert_kind_is_under_the_support_severity_of_its_own_severity():
    listed: dict[str, str] = {}
    for line in page_text().splitlines():
        row = _ROW.match(line)
        if row:
            for kind in re.findall(r"`(\w+)`", row["kinds"]):
                listed[kind] = row["severity"]
    assert listed == {name: kind.severity for name, kind in ALERT_KINDS.items()}


@pytest.mark.unit
def test_the_contacts_are_fields_the_firm_fills_in():
    fields = FIELD.findall(page_text())
    assert {"<FIRM: support mailbox>", "<FIRM: ticket queue>", "<FIRM: PagerDuty service>"} <= set(fields)
    assert "<FIRM: business hours and time zone>" in fields


@pytest.mark.integration
def test_the_pages_command_lists_every_unfilled_field():
    completed = subprocess.run(listing_command(), shell=True, cwd=REPO_ROOT, capture_output=True, text=True)

    assert completed.returncode == 0, completed.stderr
    listed = FIELD.findall(completed.stdout)
    assert listed == FIELD.findall(page_text())
    for line in completed.stdout.splitlines():  # "line number:text", so each field is found in the page
        number, _, text = line.partition(":")
        assert page_text().splitlines()[int(number) - 1] == text


@pytest.mark.integration
def test_a_filled_in_page_lists_nothing(tmp_path):
    (tmp_path / "docs").mkdir()
    filled = FIELD.sub("esg-support@firm.example", page_text())
    (tmp_path / PAGE).write_text(filled)
    shutil.copy(REPO_ROOT / "docs" / "runbook.md", tmp_path / "docs")

    completed = subprocess.run(listing_command(), shell=True, cwd=tmp_path, capture_output=True, text=True)

    assert completed.stdout == "" and completed.returncode == 1  # grep's "no match"
