"""Fixtures of the tests of ops/: promtool, from Debian's prometheus package."""

import shutil

import pytest

from esg_assets_tests.support.prometheus_server import prometheus_binary


@pytest.fixture
def promtool() -> str:
    """The promtool binary; the test skips, saying why, where it is not installed (.ci/run installs it)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return binary


@pytest.fixture
def prometheus() -> str:
    """The prometheus server binary; the test skips, saying why, where it is not installed."""
    binary = prometheus_binary()
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return binary
