"""Keeps a test's JSON logs in its tmp_path: asset steps and sensors configure the logging of their process."""

import logging

import pytest

from esg_assets.lib.logs import run_logging


@pytest.fixture(autouse=True)
def project_logs_in_tmp(monkeypatch, tmp_path):
    """ESG_LOG_DIR in tmp_path; the handlers a step or sensor added are removed after the test."""
    monkeypatch.setenv("ESG_LOG_DIR", str(tmp_path / "log"))
    project = logging.getLogger("esg_assets")
    handlers, level = list(project.handlers), project.level
    yield tmp_path / "log"
    for handler in [h for h in project.handlers if h not in handlers]:
        project.removeHandler(handler)
        handler.close()
    project.setLevel(level)
    run_logging._configured_for = None  # the next test configures its own directory
