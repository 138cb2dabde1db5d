"""A real rsyslog on loopback: its own configuration in tmp, in the foreground, TCP on 127.0.0.1 and a unix
datagram socket, the ``esg-audit`` records written to a file as the firm's rsyslog writes its copy.

Not HTTP, so not a case for pytest-httpserver: the audit witness is checked against the real daemon, whose
line framing and reconnect behaviour are what matter. The ``rsyslog`` fixture is in lib/audit/conftest.py."""

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

from esg_assets_tests.support.ports import free_port

RSYSLOGD = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")

CONFIG = """\
global(workDirectory="{directory}")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imtcp" address="127.0.0.1" port="{port}")
input(type="imuxsock" Socket="{socket}")
if $programname == "esg-audit" then {{
    action(type="omfile" file="{copy}")
    stop
}}
*.* action(type="omfile" file="{other}")
"""


class Rsyslog:
    """``rsyslogd -n -f CONF -i PIDFILE``; ``start`` returns once it accepts on its port and its socket."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.copy = directory / "esg-audit.log"  # what ESG_AUDIT_SYSLOG_COPY names
        self.socket = directory / "log"  # a /dev/log of its own
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.directory / "rsyslog.conf"
        config.write_text(
            CONFIG.format(
                directory=self.directory, port=self.port, socket=self.socket, copy=self.copy,
                other=self.directory / "other.log",
            )
        )  # fmt: skip
        output = (self.directory / "rsyslogd.out").open("ab")
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(config), "-i", str(self.directory / "rsyslogd.pid")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.directory / 'rsyslogd.out').read_text()}")
            if self.socket.exists() and _accepts(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rsyslogd did not listen on {self.address} within 20 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def records(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The records in the copy, once it holds ``count`` (rsyslog writes a moment after it reads)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._records()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def lines(self) -> list[str]:
        return self.copy.read_text().splitlines() if self.copy.exists() else []

    def _records(self) -> list[dict]:
        return [json.loads(line[line.index("{") :]) for line in self.lines() if "{" in line]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
