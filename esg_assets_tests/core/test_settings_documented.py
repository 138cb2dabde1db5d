"""Every setting the job reads is documented in README.md and listed in .env.example."""

import pytest

from esg_assets.core import settings
from esg_assets_tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("setting", settings.ALL_SETTINGS, ids=lambda setting: setting.name)
def test_setting_is_in_readme_and_env_example(setting):
    readme = (REPO_ROOT / "README.md").read_text()
    env_example = (REPO_ROOT / ".env.example").read_text()
    assert f"`{setting.name}`" in readme
    assert f"{setting.name}=" in env_example


def test_no_secret_has_a_real_looking_value_in_env_example():
    lines = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for setting in settings.ALL_SETTINGS:
        if setting.secret:
            assert lines[setting.name] in ("", "change-me")
