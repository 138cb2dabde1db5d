"""Every setting reaches the code as a checked, typed resource field.

A bad value is refused with one message naming the variable and the value, a secret's value is never repeated,
and nothing but the configuration reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from esg_assets.config import resources
from esg_assets.config.environment import now
from esg_assets.core.settings import ALL_SETTINGS

pytestmark = pytest.mark.unit

PACKAGE = Path(resources.__file__).resolve().parents[1]

# A bad value of each kind of setting, and the resource the configuration builds from it.
BAD_VALUES = [
    ("ESG_RATE_LIMIT_PER_SECOND", "0", resources.firm_api, "a positive whole number"),
    ("ESG_MAX_IN_FLIGHT", "many", resources.firm_api, "a positive whole number"),
    ("ESG_API_BASE_URL", "esg.example.com", resources.firm_api, "an http(s) URL"),
    ("ESG_ALLOW_INSECURE_HTTP", "yes", resources.firm_api, "true or false"),
    ("ESG_SMTP_PORT", "70000", resources.smtp_relay, "a whole number from 1 to 65535"),
    ("ESG_SMTP_SECURITY", "tls", resources.smtp_relay, "one of starttls, ssl, none"),
    ("ESG_PAGERDUTY_EVENTS_URL", "ftp://events.example.com", resources.pagerduty_events, "an http(s) URL"),
    ("ESG_PUSHGATEWAY_URL", "gateway:9091", resources.pushgateway, "an http(s) URL"),
    ("ESG_DAGSTER_BASE_URL", "dagster", resources.alerting, "an http(s) URL"),
    ("ESG_SUPPORT_URL", "intranet/support", resources.alerting, "an http(s) URL, or docs/support.md"),
    ("ESG_SUPPORT_URL", "support.md", resources.summary_email, "an http(s) URL, or docs/support.md"),
    ("ESG_START_GRACE_MINUTES", "-1", resources.alerting, "a whole number from 0 to 1440"),
    ("ESG_DEADLINE_HOUR", "24", resources.alerting, "a whole number from 0 to 23"),
    ("ESG_S3_SSE", "none", resources.report_store_from, "one of aws:kms, AES256"),
    ("ESG_MAX_FAILURE_RATE", "5%", resources.data_quality, "a fraction between 0 and 1"),
    ("ESG_RECONCILIATION_SAMPLE", "-1", resources.data_quality, "a whole number of 0 or more"),
]


@pytest.fixture
def valid_environment(monkeypatch, tmp_path):
    """Every setting set to a value that passes, so each test breaks exactly one."""
    for setting in ALL_SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    for name in ("ESG_AUTH_TOKEN_URL", "ESG_AMS_BASE_URL", "ESG_API_BASE_URL"):
        monkeypatch.setenv(name, "https://api.firm.example")
    for name in ("ESG_CLIENT_ID", "ESG_CLIENT_SECRET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", str(tmp_path / "esg.key"))
    monkeypatch.setenv("ESG_SITE_CONFIG", "")
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "value", "build", "expected"), BAD_VALUES, ids=[v[0] for v in BAD_VALUES]
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_value(valid_environment, variable, value, build,
                                                                  expected):  # fmt: skip
    build(now)  # fine as set
    valid_environment.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        build(now)
    assert f"Setting {variable} must be {expected}" in str(refused.value)
    assert f"got {value!r}" in str(refused.value)


def test_a_secret_that_fails_its_check_is_not_repeated():
    from esg_assets.core.setting_values import BadSettingError
    from esg_assets.core.settings import SMTP_PASSWORD

    message = str(BadSettingError(SMTP_PASSWORD, "hunter2-secret", "something else"))
    assert "hunter2-secret" not in message and SMTP_PASSWORD.name in message


def test_the_code_location_passes_secrets_as_environment_variable_names_only(valid_environment):
    valid_environment.setenv("ESG_PAGERDUTY_ROUTING_KEY", "R0ut1ngKey-that-must-stay-a-name")
    valid_environment.setenv("ESG_SMTP_PASSWORD", "Pa55-w0rd-that-must-stay-a-name")
    valid_environment.setenv("ESG_CLIENT_SECRET", "client-secret-that-must-stay-a-name")
    shown = repr(resources.dagster_resources())
    for secret in ("R0ut1ngKey", "Pa55-w0rd", "client-secret-that"):
        assert secret not in shown


def _environment_reads(path: Path) -> list[str]:
    """``os.environ``, ``os.getenv`` and ``from os import environ`` in one module, as ``line: code``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{node.lineno}: from os import {a.name}" for a in node.names if "env" in a.name]
    return sorted(found, key=lambda read: int(read.split(":")[0]))


def test_nothing_below_the_configuration_reads_the_environment():
    # The entry points may (config/ reads the settings; the sandbox is a separate program); nothing else.
    allowed = {PACKAGE / "config", PACKAGE / "sandbox"}
    offenders = {
        str(path.relative_to(PACKAGE)): reads
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(folder in path.parents for folder in allowed)
        for reads in [_environment_reads(path)]
        if reads
    }
    assert offenders == {}


def test_the_scan_finds_an_environment_read(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nfrom os import getenv\nvalue = os.environ.get('X')\nother = os.getenv('Y')\n"
    )
    assert _environment_reads(probe) == ["2: from os import getenv", "3: os.environ", "4: os.getenv"]
