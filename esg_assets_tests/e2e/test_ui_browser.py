"""The Dagster UI in a real browser: lineage, the materialized partition, check results, the summary Markdown.

A DAGSTER_HOME with one partition materialized against a small sandbox, ``dagster-webserver`` on loopback with
the project's workspace, and Debian's Chromium driven by Playwright. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from playwright.sync_api import Browser, Page, sync_playwright

from esg_assets.config.resources import dagster_resources
from esg_assets.lib.crypto.keys import generate_key_file
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.support.dagster_processes import DagsterHome, running_webserver
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import ALL_ASSETS

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "ui"
DAY = date(2026, 11, 24)
ASSETS = ["active_accounts", "esg_ratings", "ratings_file", "daily_summary", "run_history"]
LINEAGE = set(zip(ASSETS, ASSETS[1:]))
PAGE_WAIT_MS = 30_000  # a first page also waits for the code location to load
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
    ),
]


@dataclass(frozen=True)
class MaterializedDay:
    environment: dict[str, str]  # DAGSTER_HOME and the job's ESG_* settings
    check_results: dict[str, dict[str, bool]]  # asset -> check -> passed, as the run recorded them


@pytest.fixture(scope="module")
def materialized_day(tmp_path_factory) -> Iterator[MaterializedDay]:
    """A DAGSTER_HOME (the project's dagster.yaml) with the day's materialization, and the job's settings."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    generate_key_file(root / "esg.key")
    config = SandboxConfig(accounts=30, seed=3, failure_rate=0.1, partial_rate=0.1, ams_noise=False)
    with SandboxServer(config) as sandbox, pytest.MonkeyPatch.context() as environment:
        settings = {
            **sandbox.job_environment(),
            "DAGSTER_HOME": str(home),
            "ESG_ENCRYPTION_KEY_FILE": str(root / "esg.key"),
            "ESG_OUTPUT_URI": f"file://{root / 'reports'}",
            "ESG_WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
            # A module fixture runs before the autouse ESG_LOG_DIR of a test: without these the run would
            # log and audit into the checkout's ./var, which `make run` uses (and another suite may share).
            "ESG_LOG_DIR": str(root / "log"),
            "ESG_AUDIT_LOG_DIR": str(root / "audit"),
        }
        for name, value in settings.items():
            environment.setenv(name, value)
        with (
            DagsterInstance.get() as instance
        ):  # the real instance of DAGSTER_HOME, as the webserver reads it
            result = materialize(
                ALL_ASSETS, partition_key=DAY.isoformat(), resources=dagster_resources(), instance=instance
            )
        assert result.success
        check_results: dict[str, dict[str, bool]] = {}
        for evaluation in result.get_asset_check_evaluations():
            asset = evaluation.asset_key.to_user_string()
            check_results.setdefault(asset, {})[evaluation.check_name] = evaluation.passed
        yield MaterializedDay(settings, check_results)


@pytest.fixture(scope="module")
def webserver(materialized_day) -> Iterator[str]:
    """``dagster-webserver`` on a free loopback port with the project's workspace; yields its base URL."""
    home = DagsterHome(
        Path(materialized_day.environment["DAGSTER_HOME"]),
        REPO_ROOT / "workspace.yaml",
        {**os.environ, **materialized_day.environment},
    )
    with running_webserver(home, cwd=REPO_ROOT) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, webserver: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=webserver)
    # The UI greets a new browser on localhost with a newsletter dialog that would cover the page.
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    context.set_default_timeout(PAGE_WAIT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# --- the asset graph ---------------------------------------------------------------------------------

# The graph is an SVG: each asset a <foreignObject> box, each dependency a <path> with an arrow marker.
_GRAPH = """() => {
  const graph = [...document.querySelectorAll('svg')].find(svg => svg.querySelector('foreignObject'));
  if (!graph) return null;
  const box = e => ({x: +e.getAttribute('x'), y: +e.getAttribute('y'),
                     w: +e.getAttribute('width'), h: +e.getAttribute('height')});
  return {
    nodes: [...graph.querySelectorAll('foreignObject')]
      .map(e => ({text: e.querySelector('div').innerText, ...box(e)})),
    edges: [...graph.querySelectorAll('path[marker-end]')].map(e => e.getAttribute('d')),
  };
}"""


def _nearest_asset(nodes: list[dict], x: float, y: float) -> str:
    def distance(node: dict) -> float:
        dx = max(node["x"] - x, 0, x - node["x"] - node["w"])
        dy = max(node["y"] - y, 0, y - node["y"] - node["h"])
        return math.hypot(dx, dy)

    return min(nodes, key=distance)["asset"]


def asset_boxes(graph: dict) -> list[dict]:
    """The graph's boxes, each with the one asset it names."""
    boxes = []
    for node in graph["nodes"]:
        names = [name for name in ASSETS if re.search(rf"\b{name}\b", node["text"])]
        assert len(names) == 1, f"a box of the graph names {names}: {node['text']!r}"
        boxes.append({**node, "asset": names[0]})
    return boxes


def drawn_lineage(graph: dict) -> set[tuple[str, str]]:
    """(upstream, downstream) for each arrow: the asset boxes nearest its start and its end."""
    boxes = asset_boxes(graph)
    edges = set()
    for path in graph["edges"]:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
        edges.add((_nearest_asset(boxes, *numbers[:2]), _nearest_asset(boxes, *numbers[-2:])))
    return edges


def test_asset_graph_shows_the_five_assets_and_their_lineage(page):
    page.goto("/asset-groups")
    for asset in ASSETS:
        page.locator("foreignObject").filter(has_text=asset).first.wait_for(state="visible")
    graph = page.evaluate(_GRAPH)
    screenshot(page, "01-asset-graph")
    assert sorted(box["asset"] for box in asset_boxes(graph)) == sorted(ASSETS)
    assert len(graph["edges"]) == len(LINEAGE)
    assert drawn_lineage(graph) == LINEAGE


# --- the partition, the checks, the summary ----------------------------------------------------------


def test_the_days_partition_appears_materialized(page):
    page.goto(f"/assets/daily_summary?view=partitions&partition={DAY.isoformat()}")
    # The status filter counts one materialized partition of the daily range, the others missing.
    page.get_by_text("Materialized (1)").wait_for()
    assert page.get_by_text(re.compile(r"^Missing \(\d+\)$")).is_visible()
    # The selected day's header: its date and its status tag.
    header = page.locator(f"[data-tooltip='{DAY.isoformat()}']").filter(has_text="Materialized")
    header.get_by_text("Materialized", exact=True).wait_for()
    page.get_by_text("Latest materialization").wait_for()
    screenshot(page, "02-partition-materialized")


@pytest.mark.parametrize("asset", ["esg_ratings", "ratings_file"])
def test_asset_checks_and_their_results_are_visible(page, materialized_day, asset):
    expected = {
        check: "Succeeded" if passed else "Failed"
        for check, passed in materialized_day.check_results.get(asset, {}).items()
    }
    assert expected, f"the run evaluated no check of {asset}"
    page.goto(f"/assets/{asset}?view=checks")
    page.get_by_text(f"Checks ({len(expected)})").wait_for()
    for check, status in expected.items():
        row = page.locator("[class*='checkRow']").filter(has=page.get_by_title(check, exact=True))
        row.get_by_text(status, exact=True).wait_for()
    screenshot(page, f"03-asset-checks-{asset}")


def test_the_summary_markdown_renders(page):
    page.goto(f"/assets/daily_summary?view=partitions&partition={DAY.isoformat()}")
    page.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("heading", name=f"ESG ratings summary for {DAY.isoformat()}", level=1).wait_for()
    screenshot(page, "04-summary-markdown")
    # Rendered, not shown as source: real tables and headings, no Markdown syntax left over.
    assert dialog.locator("table").count() >= 5
    assert dialog.get_by_role("columnheader", name="Processing Status").is_visible()
    assert dialog.get_by_role("heading", name="Run performance", level=2).count() == 1
    text = dialog.inner_text()
    assert "|---" not in text and "**" not in text and "# ESG" not in text
