"""Benchmark: the day fetched in K = 1 and K = 2 shards on this machine, unthrottled and at a rate limit.

One invocation runs, in order: unthrottled K = 1 then K = 2, then at ``--rate-limit`` K = 1 then K = 2, each
with a fresh warehouse, key, Dagster home and sandbox (so every run starts from the same state), the job as
the runbook runs it (``dagster asset materialize``, ESG_SHARDS=K: a process per step above one shard). It
prints, per run, the ratings step's requests a second (the sandbox's count of the requests it served over the
fetch, start of the first shard to the end of the last), the 429s the limit caused, and the CPU seconds each
process used over the fetch: each shard's (its step's own figure) and the sandbox's (from /proc).

    .venv/bin/python bench/shards.py --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from dagster import DagsterEventType, DagsterInstance
from run_bench import BIN, REPO, run_job, start_sandbox  # bench/ is the script's folder

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ShardsRun:
    mode: str
    shards: int
    accounts: int
    rate_limit: float | None
    max_in_flight: int
    requests: int
    fetch_seconds: float
    requests_per_second: float
    ratio_to_limit: float | None
    throttled_by_limit: int
    shard_cpu_seconds: list[float]
    shard_requests: list[int]
    sandbox_cpu_seconds: float
    wall_seconds: float
    exit_code: int


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def shard_figures(dagster_home: Path) -> list[dict]:
    """Each fetch_shard step's output metadata in the home's one run: cpu_seconds, api_requests, ..."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs(limit=1)
        figures = []
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_OUTPUT):
            if entry.step_key.startswith("esg_ratings.fetch_shard"):
                metadata = entry.dagster_event.event_specific_data.metadata
                figures.append({key: value.value for key, value in metadata.items()})
        return sorted(figures, key=lambda figure: figure["shard"])


def one_run(arguments: argparse.Namespace, mode: str, shards: int, root: Path) -> ShardsRun:
    work = root / f"{mode}-k{shards}"
    work.mkdir(parents=True)
    subprocess.run(
        [str(BIN / "esg-report"), "keygen", "--output", str(work / "esg-report.key")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (work / "dagster_home").mkdir()
    shutil.copyfile(REPO / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
    limit = arguments.rate_limit if mode == "limited" else None
    in_flight = arguments.max_in_flight if limit else arguments.unthrottled_in_flight
    sandbox_arguments = [
        "--accounts", str(arguments.accounts), "--seed", "11", "--latency-ms", str(arguments.latency_ms),
        "--max-in-flight", str(in_flight),
    ]  # fmt: skip
    if limit:
        sandbox_arguments += ["--rate-limit", str(limit)]
    sandbox, settings = start_sandbox(sandbox_arguments, work / "sandbox.log")
    url = settings["ESG_API_BASE_URL"].removesuffix("/esg")
    environment = {
        **os.environ,
        **settings,
        "ESG_OUTPUT_URI": f"file://{work / 'reports'}",
        "ESG_WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
        "ESG_ENCRYPTION_KEY_FILE": str(work / "esg-report.key"),
        "DAGSTER_HOME": str(work / "dagster_home"),
        "ESG_MAX_IN_FLIGHT": str(in_flight),
        "ESG_RATE_LIMIT_PER_SECOND": str(int(limit or arguments.client_rate)),
        "ESG_SHARDS": str(shards),
        "ESG_RECONCILIATION_SAMPLE": "0",  # only the fetch's requests in the sandbox's count
    }
    try:
        sandbox_cpu = process_cpu_seconds(sandbox.pid)
        code, wall, _ = run_job(environment, arguments.partition, None, work / "job.log")
        sandbox_cpu = process_cpu_seconds(sandbox.pid) - sandbox_cpu
        stats = requests.get(f"{url}/_sandbox/stats", timeout=10).json()["esg"]
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=60)
    figures = shard_figures(work / "dagster_home")
    # The fetch: from the first second the sandbox served a rating to the last (whole seconds, its own clock).
    served = sorted(int(second) for second in stats["per_second"])
    seconds = served[-1] - served[0] + 1
    total = stats["requests"]
    return ShardsRun(
        mode=mode,
        shards=shards,
        accounts=arguments.accounts,
        rate_limit=limit,
        max_in_flight=in_flight,
        requests=total,
        fetch_seconds=seconds,
        requests_per_second=round(total / seconds, 1),
        ratio_to_limit=round(total / seconds / limit, 3) if limit else None,
        throttled_by_limit=stats["limited"],
        shard_cpu_seconds=[figure["cpu_seconds"] for figure in figures],
        shard_requests=[figure["api_requests"] for figure in figures],
        sandbox_cpu_seconds=round(sandbox_cpu, 1),
        wall_seconds=round(wall, 1),
        exit_code=code,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rate-limit", type=float, default=500.0, help="the limited runs' limit")
    parser.add_argument("--max-in-flight", type=int, default=64, help="M of the limited runs")
    parser.add_argument("--unthrottled-in-flight", type=int, default=32, help="M of the unthrottled runs")
    parser.add_argument("--client-rate", type=float, default=100_000, help="job pacing when unthrottled")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["unthrottled", "limited"])
    parser.add_argument("--partition", default="2026-11-20")
    parser.add_argument("--results", type=Path, default=REPO / "var" / "bench" / "shards.jsonl")
    arguments = parser.parse_args()
    root = REPO / "var" / "bench" / f"shards-{arguments.accounts}-{int(time.time())}"
    rows = [
        one_run(arguments, mode, shards, root) for mode in arguments.modes for shards in arguments.shards
    ]
    print(
        f"{'mode':<12}{'K':>3}{'accounts':>10}{'limit':>7}{'M':>4}{'requests':>10}{'fetch s':>9}{'req/s':>9}"
        f"{'ratio':>7}{'429s':>6}{'shard CPU s':>18}{'sandbox CPU s':>15}{'wall s':>8}"
    )
    for row in rows:
        print(
            f"{row.mode:<12}{row.shards:>3}{row.accounts:>10,}{row.rate_limit or '-':>7}"
            f"{row.max_in_flight:>4}"
            f"{row.requests:>10,}{row.fetch_seconds:>9.0f}{row.requests_per_second:>9.1f}"
            f"{row.ratio_to_limit or '-':>7}{row.throttled_by_limit:>6}"
            f"{' + '.join(f'{cpu:.1f}' for cpu in row.shard_cpu_seconds):>18}{row.sandbox_cpu_seconds:>15.1f}"
            f"{row.wall_seconds:>8.1f}"
        )
    for mode in arguments.modes:
        by_k = {row.shards: row for row in rows if row.mode == mode}
        if 1 in by_k and 2 in by_k:
            print(f"{mode}: K=2 / K=1 = {by_k[2].requests_per_second / by_k[1].requests_per_second:.2f}x")
    arguments.results.parent.mkdir(parents=True, exist_ok=True)
    with arguments.results.open("a") as results:
        for row in rows:
            results.write(json.dumps(asdict(row)) + "\n")
    return 0 if all(row.exit_code == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
