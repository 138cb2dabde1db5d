"""Encryption in transit: the job over HTTPS to `esg-sandbox --tls` with ESG_CA_BUNDLE, refusals of a wrong CA
and an expired certificate, and plain http:// refused unless loopback or the logged opt-out."""

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from dagster import build_init_resource_context

from esg_assets.core.transport_security import InsecureUrlError, require_secure_url
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.channels.pagerduty import PagerDutyAlerts
from esg_assets.defs.alerting.delivery import AlertChannelError
from esg_assets.lib.firm_api.errors import AuthError
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.pagerduty.events_api import PagerDutyResource
from esg_assets.sandbox.server import SandboxConfig, SandboxServer
from esg_assets.sandbox.tls import write_sandbox_certificates
from esg_assets_tests.support.paths import REPO_ROOT
from esg_assets_tests.support.pipeline_runs import decrypted_file, parsed, run_day


def token_from(sandbox: SandboxServer, ca_bundle: str | None) -> str:
    session = build_session(pool_size=1, ca_bundle=ca_bundle)
    return TokenProvider(session, sandbox.token_url, "sandbox", "sandbox", timeout=5).token()


@pytest.mark.e2e
def test_the_daily_run_over_https_verifies_the_sandbox_against_its_ca(job_environment):
    with SandboxServer(SandboxConfig(accounts=40, seed=6, tls=True)) as sandbox:
        assert sandbox.base_url.startswith("https://127.0.0.1:")
        paths = job_environment(sandbox)  # ESG_CA_BUNDLE is among the sandbox's settings
        assert os.environ["ESG_CA_BUNDLE"] == str(sandbox.certificates.ca_file)
        run_day()
        active = [account_id for account_id, _ in sandbox.data.expected_active_accounts()]
    assert [row[0] for row in parsed(decrypted_file(paths))] == active


@pytest.mark.integration
def test_a_server_signed_by_another_ca_is_refused(tmp_path):
    other_ca = write_sandbox_certificates(tmp_path / "other").ca_file
    with SandboxServer(SandboxConfig(accounts=1, tls=True)) as sandbox:
        assert token_from(sandbox, str(sandbox.certificates.ca_file))
        for ca_bundle in (str(other_ca), None):  # another private CA, and the system trust store
            with pytest.raises(
                AuthError, match="TLS certificate verify failed: unable to get local issuer certificate"
            ):
                token_from(sandbox, ca_bundle)


@pytest.mark.integration
def test_an_expired_certificate_is_refused_without_retrying():
    with SandboxServer(SandboxConfig(accounts=1, tls=True, tls_expired=True)) as sandbox:
        with pytest.raises(AuthError) as caught:
            token_from(sandbox, str(sandbox.certificates.ca_file))
        assert sandbox.stats()["token"]["requests"] == 0  # the handshake failed: not one request got through
    assert "TLS certificate verify failed: certificate has expired" in str(caught.value)
    assert "attempt" not in str(caught.value)  # not worth a retry


@pytest.mark.integration
def test_esg_sandbox_tls_prints_the_ca_bundle_and_serves_https():
    command = [sys.executable, "-m", "esg_assets.sandbox.cli", "--port", "0", "--accounts", "3", "--tls"]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        exports, ready = {}, None
        while ready is None:
            line = lines.get(timeout=60)
            if line.startswith("# sandbox ready on "):
                ready = line.removeprefix("# sandbox ready on ").strip()
            else:
                name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
                exports[name] = value
        assert ready.startswith("https://127.0.0.1:")
        ca_bundle = exports["ESG_CA_BUNDLE"]
        assert Path(ca_bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")
        form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        response = requests.post(exports["ESG_AUTH_TOKEN_URL"], verify=ca_bundle, timeout=10, data=form)
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        reader.join(timeout=5)
        process.stdout.close()
    assert not Path(ca_bundle).exists()  # its temporary directory goes with it


@pytest.mark.unit
@pytest.mark.parametrize(
    "url",
    [
        "https://esg.example.com/v1",
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://[::1]:9/x",
        "http://127.9.9.9/",
    ],
)
def test_https_and_loopback_http_pass(url):
    assert require_secure_url("ESG_API_BASE_URL", url, allow_insecure=False) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    "url", ["http://esg.example.com/v1", "http://10.0.0.7/x", "esg.example.com:9091", "ftp://x/y"]
)
def test_other_plain_urls_are_refused_naming_the_setting(url):
    with pytest.raises(InsecureUrlError, match="^Setting ESG_API_BASE_URL "):
        require_secure_url("ESG_API_BASE_URL", url, allow_insecure=False)


def _firm_api(**overrides) -> FirmApiResource:
    settings = dict(
        token_url="https://auth.example.com/token", client_id="c", client_secret="s",
        ams_base_url="https://ams.example.com", esg_base_url="https://esg.example.com",
        rate_limit_per_second=50, max_in_flight=4, http_timeout_seconds=5, max_attempts=3,
    )  # fmt: skip
    return FirmApiResource(**{**settings, **overrides})


@pytest.mark.integration  # build_init_resource_context makes a Dagster instance
def test_the_firm_api_refuses_plain_http_at_launch_and_allows_it_only_loudly(caplog):
    insecure = "http://ams.internal.example.com"
    with pytest.raises(
        InsecureUrlError, match="Setting ESG_AMS_BASE_URL is plain http to ams.internal.example.com"
    ):
        _firm_api(ams_base_url=insecure).setup_for_execution(build_init_resource_context())
    with caplog.at_level(logging.WARNING):
        _firm_api(ams_base_url=insecure, allow_insecure_http="true").setup_for_execution(
            build_init_resource_context()
        )
    assert "INSECURE: ESG_AMS_BASE_URL sends to ams.internal.example.com over plain http" in caplog.text
    with pytest.raises(ValueError, match="ESG_ALLOW_INSECURE_HTTP must be true or false, got 'yes'"):
        _firm_api(allow_insecure_http="yes").setup_for_execution(build_init_resource_context())


@pytest.mark.unit
def test_pagerduty_never_sends_its_routing_key_over_plain_http(monkeypatch):
    monkeypatch.delenv("ESG_ALLOW_INSECURE_HTTP", raising=False)
    alerts = PagerDutyAlerts(
        PagerDutyResource(routing_key="r" * 32, events_url="http://events.example.com/v2/enqueue")
    )
    alert = Alert(
        kind="run_failure", partition="2026-11-20", severity="critical", summary="s", runbook_step="x"
    )
    with pytest.raises(AlertChannelError, match="Setting ESG_PAGERDUTY_EVENTS_URL is plain http"):
        alerts.send(alert)
