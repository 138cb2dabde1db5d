"""Fixtures of the audit log's tests: a real rsyslog on loopback, the syslog witness."""

import pytest

from esg_assets_tests.support.syslog_loopback import RSYSLOGD, Rsyslog


@pytest.fixture
def rsyslog(tmp_path_factory):
    """rsyslogd of its own (TCP on 127.0.0.1 and a unix socket), stopped after the test."""
    if RSYSLOGD is None:
        pytest.skip("rsyslog is not installed (apt-get install rsyslog)")
    daemon = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    daemon.start()
    yield daemon
    daemon.stop()
