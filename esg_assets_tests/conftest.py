"""Fixtures shared by more than one folder of the suite. Tests take them as parameters; nothing imports them.

Fixtures used in one folder only live in that folder's conftest.py; helpers that are not fixtures (classes,
functions, constants) are imported from ``esg_assets_tests.support``.
"""

import logging
import os
import subprocess
from collections import Counter

import pytest
from moto.server import ThreadedMotoServer

from esg_assets.cli.report import main as report_main
from esg_assets.core.file_names import errors_file_name, ratings_file_name
from esg_assets.core.ratings.errors_csv import write_errors_csv
from esg_assets.core.ratings.ratings_csv import write_ratings_csv
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.crypto.keyring import key_file_keyring
from esg_assets.lib.crypto.keys import generate_key_file, load_key_ring
from esg_assets.lib.logs import run_logging
from esg_assets.lib.report_store.local import LocalReportStore
from esg_assets.lib.report_store.manifest import ERRORS_KIND, RATINGS_KIND
from esg_assets.lib.report_store.publishing import DaySet
from esg_assets.sandbox.server import SandboxServer
from esg_assets_tests.support.alert_loopback import SMTP_PASSWORD, SMTP_USER, AlertServers, alert_settings
from esg_assets_tests.support.aws_loopback import REGION, LoopbackAws
from esg_assets_tests.support.dagster_processes import (
    MONITORED_LOCATION,
    PROJECT_LOCATION,
    QUEUE_AND_MONITORING_YAML,
    DagsterHome,
    Webserver,
    make_home,
    running_daemon,
    running_webserver,
    wait_until_loaded,
    workspace_yaml,
)
from esg_assets_tests.support.decrypting import MARKER, ME, ROWS
from esg_assets_tests.support.pagerduty_server import PagerDutyServer
from esg_assets_tests.support.pipeline_runs import DAY
from esg_assets_tests.support.ports import free_port
from esg_assets_tests.support.postgres_server import PostgresServer, missing_reason, running_postgres
from esg_assets_tests.support.published_day import JOB, error_rows, rating_rows
from esg_assets_tests.support.pushgateway import pushgateway_binary, wait_until_ready
from esg_assets_tests.support.smtp_server import SmtpServer, make_certificates

# --- every test ---------------------------------------------------------------------------------------------

# The tiers, in pyproject.toml's markers: each test module says which (pytestmark, or one mark per test where
# a module has tests of more than one tier). `make test-fast` runs `-m unit`.
TIERS = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything: every collected test is checked
def pytest_collection_modifyitems(config, items):
    """Refuse a suite in which a test has no tier, or more than one: `-m unit` would drop it silently."""
    wrong = []
    for item in items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(tiers) or 'no tier'}")
    if wrong:
        raise pytest.UsageError(
            f"every test needs exactly one of the markers {', '.join(TIERS)} "
            "(see esg_assets_tests/conftest.py):\n" + "\n".join(wrong)
        )
    items[:] = longest_modules_first(items)


def longest_modules_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The modules holding an e2e test first, then those holding an integration test, then the unit-only ones;
    in each group, and in each module, the order of collection.

    `make test` hands each pytest-xdist worker whole modules in this order (``--dist loadfile
    --no-loadscope-reorder``): the longest (a real day, a daemon, a browser; measured with --durations) start
    first instead of last, so no worker is left with one at the end. A run in one process keeps the same
    order."""
    longest_first = TIERS[::-1]  # e2e, integration, unit
    rank_of_module: dict[str, int] = {}  # insertion order: the order of collection
    for item in items:
        rank = min(longest_first.index(mark.name) for mark in item.iter_markers() if mark.name in TIERS)
        module = item.nodeid.split("::", 1)[0]
        rank_of_module[module] = min(rank, rank_of_module.get(module, rank))
    collected = {module: index for index, module in enumerate(rank_of_module)}

    def place(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::", 1)[0]
        return rank_of_module[module], collected[module]

    return sorted(items, key=place)  # stable: a module's own tests keep their order


@pytest.fixture(autouse=True)
def project_logs_in_tmp(monkeypatch, tmp_path):
    """ESG_LOG_DIR in tmp_path; the handlers a step or sensor added are removed after the test.

    Asset steps and sensors configure the logging of their process, so without this a test's JSON logs would
    land in the working directory and its handlers would outlive it."""
    monkeypatch.setenv("ESG_LOG_DIR", str(tmp_path / "log"))
    project = logging.getLogger("esg_assets")
    handlers, level = list(project.handlers), project.level
    yield tmp_path / "log"
    for handler in [h for h in project.handlers if h not in handlers]:
        project.removeHandler(handler)
        handler.close()
    project.setLevel(level)
    run_logging._configured_for = None  # the next test configures its own directory


# --- the job ------------------------------------------------------------------------------------------------


@pytest.fixture
def job_environment(monkeypatch, tmp_path):
    """Settings for a job on loopback with its own warehouse, output directory and key."""

    def point_at(sandbox: SandboxServer, **overrides: str) -> dict:
        for name, value in {**sandbox.job_environment(), **overrides}.items():
            monkeypatch.setenv(name, value)
        key_file = tmp_path / "keys" / "esg.key"
        if not key_file.exists():
            generate_key_file(key_file)
        monkeypatch.setenv("ESG_ENCRYPTION_KEY_FILE", str(key_file))
        monkeypatch.setenv("ESG_OUTPUT_URI", f"file://{tmp_path / 'reports'}")
        monkeypatch.setenv("ESG_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
        monkeypatch.setenv("ESG_AUDIT_LOG_DIR", str(tmp_path / "audit"))
        return {"output": tmp_path / "reports", "key_file": key_file, "audit": tmp_path / "audit"}

    return point_at


# --- reading a published day (lib/access, config) -----------------------------------------------------------


@pytest.fixture
def decryptable_day(tmp_path):
    """The day's set as the job publishes it (ratings file of several frames, error log, sealed manifest), the
    stored path of its ratings file, and the environment to read it. Every account name holds MARKER."""
    key_file = tmp_path / "keys" / "esg.key"
    generate_key_file(key_file)
    store = LocalReportStore(tmp_path / "reports")
    rows = [(row[0], f"{MARKER} {row[1]}", *row[2:]) for row in rating_rows(ROWS)]
    keyring = key_file_keyring(load_key_ring(key_file))
    day_set = DaySet(store, keyring, AuditLog(tmp_path / "audit"), JOB, DAY, "run-1")
    ratings = day_set.stage_encrypted(
        ratings_file_name(DAY), RATINGS_KIND, lambda out: write_ratings_csv(rows, out)
    )
    day_set.stage_encrypted(
        errors_file_name(DAY), ERRORS_KIND, lambda out: write_errors_csv(error_rows(rows), out)
    )
    day_set.commit(day_set.manifest(Counter(row[-1] for row in rows)))
    env = {
        "ESG_OUTPUT_URI": store.root.as_uri(),
        "ESG_ENCRYPTION_KEY_FILE": str(key_file),
        "ESG_AUTHORIZED_READERS": ME,
        "ESG_AUDIT_LOG_DIR": str(tmp_path / "audit"),
    }
    return store.root / ratings.path, env


@pytest.fixture
def decrypt(tmp_path, monkeypatch, capsysbinary):
    """``esg-report decrypt`` of DAY in-process with an environment; returns (exit code, stdout, stderr)."""

    def run(env: dict, output: str = "out.csv", *extra: str):
        for key in [key for key in os.environ if key.startswith("ESG_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        code = report_main(["decrypt", "--date", DAY.isoformat(), "--output", output, *extra])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    return run


# --- AWS on loopback: moto's server (lib/audit, lib/crypto, lib/report_store) -------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    """The URL of a moto server for this module's tests; each test makes its own buckets and keys."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch) -> LoopbackAws:
    """Credentials and region for boto3 in the environment (fake: moto accepts any), and client makers."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return LoopbackAws(moto_endpoint)


# --- alert channels on loopback (defs/alerting, cli) --------------------------------------------------------


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    """A CA and a certificate for localhost and 127.0.0.1 (the sandbox's own generator), for TLS relays."""
    return make_certificates(tmp_path_factory.mktemp("alert-tls"))


@pytest.fixture
def alert_servers(monkeypatch, certificates) -> AlertServers:
    """PagerDuty and a STARTTLS+AUTH SMTP relay on 127.0.0.1, and the settings pointing the alerts at them."""
    with PagerDutyServer() as pagerduty, SmtpServer(certificates, SMTP_USER, SMTP_PASSWORD) as smtp:
        for name, value in alert_settings(pagerduty, smtp, certificates).items():
            monkeypatch.setenv(name, value)
        yield AlertServers(pagerduty, smtp)


# --- a Prometheus Pushgateway (lib/logs, defs/run_metrics) --------------------------------------------------


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory):
    """A real Pushgateway on loopback (Debian package prometheus-pushgateway), its URL yielded."""
    binary = pushgateway_binary()
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with log.open("wb") as output:
        # No persistence file: Debian's default (/var/lib/prometheus/pushgateway.data) would hand every test
        # gateway on the machine the groups an earlier one pushed.
        process = subprocess.Popen(
            [binary, f"--web.listen-address={address}", "--persistence.file="], stdout=output, stderr=output
        )
    try:
        wait_until_ready(f"http://{address}", process, log)
        yield f"http://{address}"
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- PostgreSQL (Debian package postgresql) for the Dagster instance (e2e) ---------------------------------


@pytest.fixture
def postgres_server(certificates) -> PostgresServer:
    """A real PostgreSQL on 127.0.0.1, a new cluster of its own for the test (TLS with the test CA, password
    logins only); its superuser creates what the test needs."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with running_postgres(certificates) as server:
        yield server


# --- real Dagster processes: dagster-daemon, dagster-webserver (cli, defs) ----------------------------------


@pytest.fixture(scope="module")
def dagster_daemon(tmp_path_factory) -> DagsterHome:
    """``dagster-daemon run`` on a fresh DAGSTER_HOME (the run queue and run monitoring, polling every second;
    the tiny ``monitored`` code location), every daemon of the instance beating; yields the home.

    One daemon for the module's tests: they share its instance, so each test uses a day of its own."""
    home = make_home(
        tmp_path_factory.mktemp("daemon_home"), QUEUE_AND_MONITORING_YAML, workspace_yaml(MONITORED_LOCATION)
    )
    with running_daemon(home):
        yield home


@pytest.fixture(scope="session")
def dagster_webserver(tmp_path_factory) -> Webserver:
    """``dagster-webserver`` on loopback with the project's code location (``esg_assets``) and the tiny
    ``monitored`` one, on a DAGSTER_HOME with the run queue and no daemon: a run submitted stays QUEUED.

    One server for the session: its tests share its instance, so each test uses a day of its own."""
    home = make_home(
        tmp_path_factory.mktemp("webserver_home"),
        QUEUE_AND_MONITORING_YAML,
        workspace_yaml(PROJECT_LOCATION, MONITORED_LOCATION),
    )
    with running_webserver(home) as webserver:
        wait_until_loaded(webserver.url, home)
        yield webserver
