"""The shipped Prometheus rules and Grafana dashboard of ops/, read as data: their PromQL by place."""

import json
import re
from pathlib import Path

import yaml

from esg_assets_tests.support.paths import REPO_ROOT

RULES_FILE = REPO_ROOT / "ops" / "prometheus" / "esg-alerts.yml"
RULES_TESTS_FILE = REPO_ROOT / "ops" / "prometheus" / "esg-alerts.test.yml"
DASHBOARD_FILE = REPO_ROOT / "ops" / "grafana" / "esg-dashboard.json"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"


def rules(path: Path = RULES_FILE) -> list[dict]:
    """Every rule (recording and alerting) of every group of the rules file."""
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alerts(path: Path = RULES_FILE) -> list[dict]:
    return [rule for rule in rules(path) if "alert" in rule]


def recorded_names(path: Path = RULES_FILE) -> set[str]:
    """The series the rules file records, which the alerts and the dashboard may read besides pushed ones."""
    return {rule["record"] for rule in rules(path) if "record" in rule}


def recorded_constant(name: str, path: Path = RULES_FILE) -> float:
    """The value of a recording rule ``vector(N)``: the job's limits as the rules hold them."""
    (expression,) = [rule["expr"] for rule in rules(path) if rule.get("record") == name]
    match = re.fullmatch(r"vector\(([0-9.]+)\)", expression.strip())
    assert match, f"{name} is not a constant: {expression}"
    return float(match.group(1))


def rule_expressions(path: Path = RULES_FILE) -> list[tuple[str, str]]:
    """(where, expression) of every rule."""
    return [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules(path)]


def dashboard(path: Path = DASHBOARD_FILE) -> dict:
    return json.loads(path.read_text())


def panels(board: dict) -> list[dict]:
    """Every panel, those inside collapsed rows included."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def panel_expressions(board: dict) -> list[tuple[str, str]]:
    """(panel title and query ref, expression) of every query of every panel."""
    return [
        (f"panel {panel['title']!r} query {target.get('refId')}", target["expr"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def runbook_anchors(path: Path = RUNBOOK) -> set[str]:
    """The anchors GitHub gives the runbook's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors
