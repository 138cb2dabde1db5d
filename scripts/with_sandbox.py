"""Runs the job (or the Dagster UI) against a sandbox it starts on a free port: what `make run` and
`make dev` do."""

# The docstring is also the script's --help text (argparse re-wraps it): wrapped here, not reworded.

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
BIN = Path(sys.executable).parent


def start_sandbox(arguments: list[str]) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start esg-sandbox and read the ESG_* settings it prints until its ready line."""
    process = subprocess.Popen(
        [str(BIN / "esg-sandbox"), "--port", "0", *arguments], stdout=subprocess.PIPE, text=True
    )
    environment: dict[str, str] = {}
    for line in process.stdout:
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            environment[name] = value.strip("'\"")
        elif line.startswith("# sandbox ready"):
            print(line, flush=True)
            return process, environment
    raise SystemExit(f"esg-sandbox exited with code {process.wait()} before it was ready")


def job_environment(sandbox_settings: dict[str, str]) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(sandbox_settings)
    environment.setdefault("ESG_OUTPUT_URI", f"file://{VAR / 'reports'}")
    environment.setdefault("ESG_WAREHOUSE_PATH", str(VAR / "warehouse.duckdb"))
    environment.setdefault("ESG_ENCRYPTION_KEY_FILE", str(VAR / "keys" / "esg-report.key"))
    # A persistent instance, so lineage, partitions and history survive between `make run` and `make dev`.
    environment.setdefault("DAGSTER_HOME", str(VAR / "dagster_home"))
    home = Path(environment["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)  # run logs and asset metadata: the service's only (docs/compliance.md)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    return environment


def ensure_key(environment: dict[str, str]) -> None:
    key_file = Path(environment["ESG_ENCRYPTION_KEY_FILE"])
    if not key_file.exists():
        subprocess.run(
            [str(BIN / "esg-report"), "keygen", "--output", str(key_file)], check=True, env=environment
        )


def live_files(output: Path, partition: str) -> dict[str, Path]:
    """The day's live set, as its manifest (the commit record) names it: file name -> stored path."""
    manifest = output / f"FirmESGRatings_{partition.replace('-', '')}.manifest.json"
    if not manifest.exists():
        return {"no set published": manifest}
    files = json.loads(manifest.read_bytes())["files"]
    return {"manifest": manifest, **{entry["name"]: output / entry["path"] for entry in files}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["run", "dev"])
    parser.add_argument("--partition", help="YYYY-MM-DD (default: today in America/Chicago)")
    parser.add_argument("sandbox_arguments", nargs=argparse.REMAINDER, help="passed on to esg-sandbox")
    arguments = parser.parse_args()
    sandbox_arguments = [a for a in arguments.sandbox_arguments if a != "--"]
    partition = arguments.partition or datetime.now(ZoneInfo("America/Chicago")).date().isoformat()

    # Dagster's processes (webserver, daemon, run workers) inherit it: their instance files are 0600 in 0700.
    os.umask(0o077)
    sandbox, sandbox_settings = start_sandbox(sandbox_arguments)
    try:
        environment = job_environment(sandbox_settings)
        ensure_key(environment)
        if arguments.mode == "dev":
            command = [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml")]
        else:
            command = [
                str(BIN / "dagster"), "asset", "materialize", "-m", "esg_assets.definitions",
                "--select", "*", "--partition", partition,
            ]  # fmt: skip
        code = subprocess.run(command, env=environment, cwd=REPO).returncode
        if arguments.mode == "run":
            output = Path(environment["ESG_OUTPUT_URI"].removeprefix("file://"))
            print(f"\nrun for {partition} {'succeeded' if code == 0 else f'FAILED (exit {code})'}")
            for name, path in live_files(output, partition).items():
                print(f"  {name:<40} {path}")
            print(
                "  read the file:            ESG_AUTHORIZED_READERS=$(id -un) .venv/bin/esg-report decrypt "
                f"--date {partition} --output -"
            )
            print(f"  (with ESG_OUTPUT_URI={environment['ESG_OUTPUT_URI']}")
            print(f"        ESG_ENCRYPTION_KEY_FILE={environment['ESG_ENCRYPTION_KEY_FILE']})")
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
