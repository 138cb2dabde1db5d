"""A real PostgreSQL for a test: its own cluster in a temporary folder, on 127.0.0.1, TLS and passwords only.

Debian's ``postgresql`` package (``.ci/run`` installs it) provides the binaries; the cluster is not Debian's
``main`` one (which the package may create, and which no test starts or touches): ``initdb`` makes a new one
in a temporary folder, and its ``postgres`` serves on a free port with no Unix socket. PostgreSQL refuses to
run as root, and CI runs the suite as root: then both run as the ``postgres`` OS user (``setpriv``, which
execs, so the process the test holds is the server itself). The fixture ``postgres_server`` is in the root
conftest.py.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from esg_assets.sandbox.tls import SandboxCertificates
from esg_assets_tests.support.ports import free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: /usr/lib/postgresql/<major>/bin
SERVICE_USER = "postgres"  # Debian's package creates it
SUPERUSER = "postgres"
START_SECONDS = 60  # an upper bound for a slow, busy machine, never a measure of speed


def postgres_bin() -> Path | None:
    """The bin folder of the newest PostgreSQL installed (``initdb`` and ``postgres`` in it), or None."""
    found = [path for path in POSTGRES_ROOT.glob("*/bin") if (path / "initdb").is_file()]
    majors = [path for path in found if re.fullmatch(r"\d+", path.parent.name)]
    return max(majors, key=lambda path: int(path.parent.name), default=None)


def missing_reason() -> str | None:
    """Why a real PostgreSQL cannot be started here, or None when it can."""
    if postgres_bin() is None:
        return f"PostgreSQL is not installed: no {POSTGRES_ROOT}/*/bin/initdb (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root and setpriv (util-linux) is missing: PostgreSQL refuses to run as root"
    if os.geteuid() == 0:
        try:
            _service_ids()
        except KeyError:
            return f"running as root and there is no {SERVICE_USER} OS user to run PostgreSQL as"
    return None


def _service_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: where it listens, its superuser's password, the CA its certificate is under."""

    host: str
    port: int
    superuser_password: str
    ca_file: Path
    log_file: Path

    def connect(self, user: str, password: str, dbname: str = "postgres", sslmode: str = "verify-full"):
        """A psycopg2 connection over TLS (the server's certificate checked against the CA by default)."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            dbname=dbname,
            sslmode=sslmode,
            sslrootcert=str(self.ca_file),
            connect_timeout=5,
        )

    def superuser(self):
        """An autocommit connection as the cluster's superuser (CREATE DATABASE refuses a transaction)."""
        connection = self.connect(SUPERUSER, self.superuser_password)
        connection.autocommit = True
        return connection

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else "(no log)"


# Only TLS connections from loopback, each with a password (SCRAM): what a production server asks of the job.
PG_HBA = "hostssl all all 127.0.0.1/32 scram-sha-256\n"


@contextmanager
def running_postgres(certificates: SandboxCertificates) -> Iterator[PostgresServer]:
    """A new cluster (initdb) served by ``postgres`` on 127.0.0.1 with ``certificates``' server certificate
    while the block runs; stopped (fast shutdown) and its folder removed after."""
    binaries = postgres_bin()
    assert binaries is not None, missing_reason()
    # Not pytest's tmp_path: its folders are the test user's, mode 0700, and the postgres user must enter.
    root = Path(tempfile.mkdtemp(prefix="esg-postgres-"))
    try:
        password = secrets.token_urlsafe(24)
        port = free_port()
        data, log_file = root / "data", root / "postgres.log"
        (root / "superuser-password").write_text(password + "\n")
        shutil.copyfile(certificates.cert_file, root / "server.crt")
        shutil.copyfile(certificates.key_file, root / "server.key")
        for private in ("superuser-password", "server.crt", "server.key"):
            (root / private).chmod(0o600)  # postgres refuses a key file others can read
        if os.geteuid() == 0:
            uid, gid = _service_ids()
            for path in (root, *root.iterdir()):
                os.chown(path, uid, gid)
        _as_service_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(root / "superuser-password"),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],  # fmt: skip
            root,
            log_file,
        ).check_returncode()
        (data / "pg_hba.conf").write_text(PG_HBA)
        server = _start_server(binaries, root, data, port, log_file)
        try:
            postgres = PostgresServer("127.0.0.1", port, password, certificates.ca_file, log_file)
            _wait_until_accepting(postgres, server)
            yield postgres
        finally:
            _stop(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _service_user_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--"]


def _service_environment() -> dict[str, str]:
    # Nothing of the test's environment (its ESG_* settings, root's HOME) reaches the server.
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/tmp"}


def _as_service_user(command: list[str], cwd: Path, log_file: Path) -> subprocess.CompletedProcess:
    with log_file.open("ab") as log:
        return subprocess.run(
            _service_user_prefix() + command,
            cwd=cwd,
            env=_service_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=START_SECONDS,
            check=False,
        )


def _start_server(binaries: Path, root: Path, data: Path, port: int, log_file: Path) -> subprocess.Popen:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",  # TCP only: no socket in /var/run/postgresql, no peer logins
        "ssl": "on",
        "ssl_cert_file": str(root / "server.crt"),
        "ssl_key_file": str(root / "server.key"),
        "fsync": "off",  # a throwaway cluster: durability is not what the test is about
    }
    command = [str(binaries / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with log_file.open("ab") as log:
        return subprocess.Popen(
            _service_user_prefix() + command,
            cwd=root,
            env=_service_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_accepting(postgres: PostgresServer, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.returncode}:\n{postgres.log()}")
        try:
            postgres.superuser().close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres did not accept within {START_SECONDS} s: {error}\n{postgres.log()}"
                )
        time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    """SIGINT: PostgreSQL's fast shutdown (ends the sessions, no waiting for clients); SIGKILL if it hangs."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
