"""JSON logs parse, carry the run context, mask secrets and rotate; metrics reach a real Pushgateway."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta

import pytest

from esg_assets.lib.logs.json_logs import LOG_FILE_NAME, configure_json_logging, job_log_context
from esg_assets.lib.pushgateway.metrics import RunMetrics, push_run_metrics
from esg_assets_tests.support.ports import free_port
from esg_assets_tests.support.pushgateway import gateway_samples

SECRET = "s3cr3t-value-never-logged"
ACCOUNT_NAME = "Harbor Pension Trust"


@pytest.fixture
def project_logger():
    """The ``esg_assets`` logger, given back with its own handlers and level after the test."""
    logger = logging.getLogger("esg_assets")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for handler in [h for h in logger.handlers if h not in handlers]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)


def lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# --- JSON logs --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_line_is_json_with_the_run_context_to_stdout_and_the_file(project_logger, tmp_path):
    stdout = io.StringIO()
    configure_json_logging(tmp_path, stream=stdout)
    log = logging.getLogger("esg_assets.defs.daily_ratings.fetch_pool")

    with job_log_context(run_id="run-1", partition="2026-11-24", asset="esg_ratings"):
        log.warning(
            "account failed after %d attempts",
            3,
            extra={"event": "account_failed", "account_id": "ACC-0000042", "counts": {"attempts": 3}},
        )
    log.info("outside the run")

    in_run, outside = lines_of(stdout.getvalue())
    assert lines_of((tmp_path / LOG_FILE_NAME).read_text()) == [in_run, outside]
    assert in_run["message"] == "account failed after 3 attempts"
    assert in_run["level"] == "WARNING" and in_run["logger"] == "esg_assets.defs.daily_ratings.fetch_pool"
    assert in_run["event"] == "account_failed"
    assert in_run["timestamp"].endswith("Z")
    assert datetime.fromisoformat(in_run["timestamp"]).utcoffset() == timedelta(0)
    assert (in_run["run_id"], in_run["partition"], in_run["asset"]) == ("run-1", "2026-11-24", "esg_ratings")
    assert in_run["account_id"] == "ACC-0000042" and in_run["counts"] == {"attempts": 3}
    assert "run_id" not in outside and outside["event"] is None


@pytest.mark.unit
def test_an_inner_context_adds_to_the_outer_one_until_it_ends(project_logger, tmp_path):
    stdout = io.StringIO()
    configure_json_logging(tmp_path, stream=stdout)
    log = logging.getLogger("esg_assets.assets")

    with job_log_context(run_id="run-1", partition="2026-11-24"):
        with job_log_context(run_id="run-1", partition="2026-11-24", asset="ratings_file"):
            log.info("inner")
        log.info("outer")

    inner, outer = lines_of(stdout.getvalue())
    assert inner["asset"] == "ratings_file" and "asset" not in outer and outer["run_id"] == "run-1"


@pytest.mark.unit
def test_configuring_twice_does_not_write_a_line_twice(project_logger, tmp_path):
    first, second = io.StringIO(), io.StringIO()
    configure_json_logging(tmp_path, stream=first)
    configure_json_logging(tmp_path, stream=second)

    logging.getLogger("esg_assets.alerts").warning("once")

    assert first.getvalue() == ""
    assert len(lines_of(second.getvalue())) == 1
    assert len(lines_of((tmp_path / LOG_FILE_NAME).read_text())) == 1


@pytest.mark.unit
def test_secrets_and_account_names_are_masked_in_fields_messages_and_tracebacks(project_logger, tmp_path):
    stdout = io.StringIO()
    configure_json_logging(tmp_path, stream=stdout)
    log = logging.getLogger("esg_assets.clients")

    log.warning(
        "token refresh with client_secret=%s",
        SECRET,
        extra={
            "client_secret": SECRET,
            "account_name": ACCOUNT_NAME,
            "routing_key": SECRET,
            "request": {"headers": {"Authorization": f"Bearer {SECRET}"}, "attempt": 2},
            "account_id": "ACC-0000042",
        },
    )
    try:
        raise RuntimeError(f"login failed: password={SECRET}")
    except RuntimeError:
        log.exception("login failed")

    output = stdout.getvalue() + (tmp_path / LOG_FILE_NAME).read_text()
    assert SECRET not in output and ACCOUNT_NAME not in output
    warning, error = lines_of(stdout.getvalue())
    assert warning["message"] == "token refresh with client_secret=[REDACTED]"
    assert warning["client_secret"] == warning["account_name"] == warning["routing_key"] == "[REDACTED]"
    assert warning["request"] == {"headers": {"Authorization": "[REDACTED]"}, "attempt": 2}
    assert warning["account_id"] == "ACC-0000042"  # ids are fine
    assert "password=[REDACTED]" in error["exception"]


@pytest.mark.unit
def test_the_file_rotates_by_size_and_every_file_holds_whole_json_lines(project_logger, tmp_path):
    configure_json_logging(tmp_path, stream=io.StringIO(), max_bytes=4096, backup_count=3)
    log = logging.getLogger("esg_assets.ratings")

    for number in range(200):
        log.info("account rated", extra={"event": "account_rated", "account_id": f"ACC-{number:07d}"})

    files = sorted(tmp_path.glob(LOG_FILE_NAME + "*"))
    assert [f.name for f in files] == [LOG_FILE_NAME, *(f"{LOG_FILE_NAME}.{n}" for n in (1, 2, 3))]
    for file in files:
        assert file.stat().st_size <= 4096
        assert all(line["event"] == "account_rated" for line in lines_of(file.read_text()))
    # the newest line is in the live file, the one the shipper tails
    assert lines_of((tmp_path / LOG_FILE_NAME).read_text())[-1]["account_id"] == "ACC-0000199"


# --- metrics ----------------------------------------------------------------------------------------


def run_metrics(**changes) -> RunMetrics:
    fields = dict(
        duration_seconds=1520.5,
        accounts_by_status={"Successful": 1900, "Partial": 88, "Failed": 12},
        failure_rate=0.006,
        api_requests=2150,
        retries=140,
        throttled_429=37,
        not_modified_304=1200,
        throughput_per_second=1.32,
        file_size_bytes=402_113,
        success=True,
        last_success_timestamp=1_795_000_000.0,
    )
    return RunMetrics(**{**fields, **changes})


@pytest.mark.integration
def test_run_metrics_reach_the_pushgateway_under_job_and_partition(pushgateway):
    assert push_run_metrics(pushgateway, "esg_daily_job", "2026-11-24", run_metrics()) is True

    samples = gateway_samples(pushgateway, "2026-11-24")
    assert samples[("esg_ratings_accounts", (("status", "Failed"),))] == 12
    assert samples[("esg_ratings_accounts", (("status", "Successful"),))] == 1900
    assert samples[("esg_ratings_run_duration_seconds", ())] == 1520.5
    assert samples[("esg_ratings_failure_rate", ())] == 0.006
    assert samples[("esg_ratings_api_requests", ())] == 2150
    assert samples[("esg_ratings_api_retries", ())] == 140
    assert samples[("esg_ratings_api_throttled_429", ())] == 37
    assert samples[("esg_ratings_api_not_modified_304", ())] == 1200
    assert samples[("esg_ratings_throughput_per_second", ())] == 1.32
    assert samples[("esg_ratings_file_size_bytes", ())] == 402_113
    assert samples[("esg_ratings_run_success", ())] == 1
    assert samples[("esg_ratings_last_success_timestamp_seconds", ())] == 1_795_000_000.0


@pytest.mark.integration
def test_a_failed_run_sets_no_success_time_and_keeps_the_days_earlier_one(pushgateway):
    push_run_metrics(pushgateway, "esg_daily_job", "2026-11-23", run_metrics(success=False))
    last_success = ("esg_ratings_last_success_timestamp_seconds", ())
    assert last_success not in gateway_samples(pushgateway, "2026-11-23")

    push_run_metrics(pushgateway, "esg_daily_job", "2026-11-22", run_metrics())
    push_run_metrics(pushgateway, "esg_daily_job", "2026-11-22", run_metrics(success=False, failure_rate=0.5))
    samples = gateway_samples(pushgateway, "2026-11-22")
    assert samples[("esg_ratings_run_success", ())] == 0 and samples[("esg_ratings_failure_rate", ())] == 0.5
    assert samples[last_success] == 1_795_000_000.0


@pytest.mark.integration
def test_a_new_push_replaces_the_statuses_of_the_last_one(pushgateway):
    push_run_metrics(pushgateway, "esg_daily_job", "2026-11-21", run_metrics())
    all_failed = run_metrics(accounts_by_status={"Failed": 2000})
    push_run_metrics(pushgateway, "esg_daily_job", "2026-11-21", all_failed)
    statuses = {k[1] for k in gateway_samples(pushgateway, "2026-11-21") if k[0] == "esg_ratings_accounts"}
    assert statuses == {(("status", "Failed"),)}


@pytest.mark.unit
def test_a_dead_pushgateway_is_logged_and_does_not_raise(caplog):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    assert push_run_metrics(dead, "esg_daily_job", "2026-11-24", run_metrics(), timeout_seconds=2) is False

    [record] = [r for r in caplog.records if getattr(r, "event", None) == "metrics_push_failed"]
    assert record.levelno == logging.WARNING and "refused" in record.getMessage().lower()


@pytest.mark.unit
def test_no_pushgateway_configured_pushes_nothing():
    assert push_run_metrics("", "esg_daily_job", "2026-11-24", run_metrics()) is False
