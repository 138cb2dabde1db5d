"""The HTML summary as Chromium lays it out: an account id is never broken over two lines, however narrow the
window. Debian's Chromium driven by Playwright, the summary page of a real day opened from its file."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from esg_assets.core.file_names import summary_file_name
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets_tests.e2e.test_ui_browser import CHROMIUM, CHROMIUM_ARGS
from esg_assets_tests.support.pipeline_runs import DAY, live_set, run_day

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium"),
]

# Per Account ID cell: how many line boxes its text takes (1 when it does not wrap).
_LINES_OF_ID_CELLS = """
() => [...document.querySelectorAll('td.ids')].map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
    return [cell.textContent.trim(), tops.size];
})
"""


def test_account_ids_take_one_line_in_a_narrow_window(job_environment):
    # Failed accounts with long reasons beside their ids: the layout that used to split the ids.
    config = SandboxConfig(accounts=80, seed=41, failure_rate=0.15, partial_rate=0.2, ams_noise=False)
    with SandboxServer(config) as sandbox:
        paths = job_environment(sandbox)
        run_day()
    page_file = live_set(paths["output"])[summary_file_name(DAY, "html")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 360, "height": 800})
            page.goto(page_file.as_uri())
            cells = page.evaluate(_LINES_OF_ID_CELLS)
        finally:
            browser.close()
    assert len(cells) >= 5  # the failed accounts' table
    assert [cell for cell in cells if cell[1] != 1] == []
