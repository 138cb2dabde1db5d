"""Benchmark: runs the whole daily graph against a sandbox with chosen limits and prints one table of numbers.

Each scenario gets a fresh warehouse, output directory, key and Dagster instance under var/bench/, starts
`esg-sandbox`, runs `dagster asset materialize` for one partition in a child process, and reads back:
the wall time of each asset (Dagster's step statistics), the requests per second the ratings step sustained
(overall and second by second, from the sandbox's own clock), the 429s the job caused (the sandbox counts
rate/in-flight rejections apart from the errors it injects), how many requests were in flight on average
(the sandbox's busy time over the step: whether the job uses all M slots when latency, not the rate, is the
limit), the peak RSS of the job process (wait4), and the API calls saved by 304s.

    .venv/bin/python bench/run_bench.py --accounts 10000 --rate-limit 50
    .venv/bin/python bench/run_bench.py --accounts 100000 --rate-limit 500 --max-in-flight 64
    .venv/bin/python bench/run_bench.py --accounts 1000000 --unthrottled --then full-refresh
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
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import requests

from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.warehouse.resource import WarehouseResource

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Step keys: `day_files` stages, checks and publishes ratings_file and daily_summary in one step.
ASSETS = ["active_accounts", "esg_ratings", "day_files", "run_history"]


@dataclass
class Measurement:
    scenario: str
    accounts: int
    rate_limit: float | None
    max_in_flight: int
    latency_ms: float
    wall_seconds: float
    asset_seconds: dict[str, float]
    api_requests: int
    requests_per_second: float
    ratio_to_limit: float | None
    worst_second_ratio: float | None  # the slowest full second of the ratings step, against the limit
    worst_ten_seconds_ratio: float | None  # the slowest 10-second window of the step, against the limit
    slowest_seconds: list[tuple[int, int]]  # (epoch second, requests) of the five slowest full seconds
    mean_in_flight: float  # requests the sandbox was serving at once, on average over the ratings step
    max_in_flight_seen: int  # the most it served at once
    throttled_by_limit: int  # 429s the job caused by exceeding the rate or in-flight limit
    injected_errors: int
    not_modified: int
    peak_rss_mib: float
    exit_code: int
    notes: list[str] = field(default_factory=list)


def start_sandbox(
    arguments: list[str], log_path: Path, own_session: bool = False
) -> tuple[subprocess.Popen, dict[str, str]]:
    """``esg-sandbox`` on a free port, and the ESG_* settings it prints; ``own_session``: its own process
    group, for a caller that stops it with the process group."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(BIN / "esg-sandbox"), "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=own_session,
    )
    settings: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            settings[name] = value.strip("'\"")
        elif line.startswith("# sandbox ready"):
            return process, settings
    raise SystemExit(f"sandbox exited early ({process.wait()}); see {log_path}")


def run_job(
    environment: dict[str, str], partition: str, config: dict | None, log_path: Path
) -> tuple[int, float, float]:
    """Materialize all the partition's assets in a child process: exit code, wall seconds, peak RSS (MiB)."""
    command = [
        str(BIN / "dagster"), "asset", "materialize", "-m", "esg_assets.definitions",
        "--select", "*", "--partition", partition,
    ]  # fmt: skip
    if config:
        command += ["--config-json", json.dumps({"ops": {"esg_ratings": {"config": config}}})]
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=environment, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024


def asset_seconds(dagster_home: Path) -> dict[str, float]:
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        return {
            stats.step_key: round(stats.end_time - stats.start_time, 2)
            for stats in instance.get_run_step_stats(run.run_id)
            if stats.end_time and stats.start_time
        }


def step_seconds(per_second: dict[str, int], start: float, end: float) -> list[tuple[int, int]]:
    """(epoch second, ESG requests) of each full second of the ratings step, zeros included.

    ``per_second`` counts the requests the sandbox served in each epoch second; the first and last second of
    the step are partial and left out.
    """
    seconds = sorted(int(second) for second in per_second if start <= int(second) <= end)
    if len(seconds) < 3:
        return []
    return [(second, per_second.get(str(second), 0)) for second in range(seconds[0] + 1, seconds[-1])]


def worst_window_ratio(counts: list[tuple[int, int]], width: int, limit: float | None) -> float | None:
    """The slowest run of ``width`` consecutive full seconds, as a share of the limit."""
    if not limit or len(counts) < width:
        return None
    values = [count for _, count in counts]
    return round(min(sum(values[i : i + width]) for i in range(len(values) - width + 1)) / (width * limit), 3)


def scenario(
    arguments: argparse.Namespace,
    name: str,
    partition: str,
    work: Path,
    config: dict | None,
    sandbox_settings: dict[str, str],
    sandbox_url: str,
) -> Measurement:
    environment = dict(os.environ)
    environment.update(sandbox_settings)
    environment.update(
        {
            "ESG_OUTPUT_URI": f"file://{work / 'reports'}",
            "ESG_WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
            "ESG_ENCRYPTION_KEY_FILE": str(work / "esg-report.key"),
            "DAGSTER_HOME": str(work / "dagster_home"),
            "ESG_MAX_IN_FLIGHT": str(arguments.max_in_flight),
            "ESG_RATE_LIMIT_PER_SECOND": str(int(arguments.rate_limit or arguments.client_rate)),
        }
    )
    before = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()["esg"]
    code, wall, peak = run_job(environment, partition, config, work / f"{name}.log")
    after = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()["esg"]

    def delta(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    def delta_status(status: str) -> int:
        return after["by_status"].get(status, 0) - before["by_status"].get(status, 0)

    warehouse = WarehouseResource(
        path=str(work / "warehouse.duckdb"),
        report_store=ReportStoreResource(
            output_uri=str(work / "reports"), encryption_key_file=str(work / "esg-report.key")
        ),
    )
    with warehouse.connect(read_only=True) as connection:
        api_requests, rate, step_start, step_end = connection.execute(
            "SELECT api_requests, requests_per_second, epoch(started_at), epoch(finished_at) "
            "FROM ratings_fetch_runs ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
    seconds = step_seconds(after.get("per_second", {}), step_start, step_end)
    # The whole series, for a look at where the slow seconds fall (start-up, a write batch, a checkpoint).
    (work / f"{name}-per-second.json").write_text(json.dumps(seconds))
    return Measurement(
        scenario=name,
        accounts=arguments.accounts,
        rate_limit=arguments.rate_limit,
        max_in_flight=arguments.max_in_flight,
        latency_ms=arguments.latency_ms,
        wall_seconds=round(wall, 1),
        asset_seconds=asset_seconds(work / "dagster_home"),
        api_requests=api_requests,
        requests_per_second=round(rate, 1),
        ratio_to_limit=round(rate / arguments.rate_limit, 3) if arguments.rate_limit else None,
        worst_second_ratio=worst_window_ratio(seconds, 1, arguments.rate_limit),
        worst_ten_seconds_ratio=worst_window_ratio(seconds, 10, arguments.rate_limit),
        slowest_seconds=sorted(seconds, key=lambda item: item[1])[:5],
        mean_in_flight=round(delta("busy_seconds") / (step_end - step_start), 1),
        max_in_flight_seen=after["max_in_flight_seen"],
        throttled_by_limit=delta("limited"),
        injected_errors=delta("injected"),
        not_modified=delta_status("304"),
        peak_rss_mib=round(peak, 1),
        exit_code=code,
    )


def print_table(rows: list[Measurement]) -> None:
    header = (
        f"{'scenario':<14}{'accounts':>10}{'limit/s':>9}{'M':>5}{'wall s':>9}{'ratings s':>11}{'req/s':>9}"
        f"{'ratio':>7}{'worst 1s':>9}{'worst 10s':>10}{'in flight':>10}{'429s':>6}{'304s':>9}"
        f"{'RSS MiB':>9}{'exit':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.scenario:<14}{row.accounts:>10,}{row.rate_limit or '-':>9}{row.max_in_flight:>5}"
            f"{row.wall_seconds:>9.1f}{row.asset_seconds.get('esg_ratings', 0):>11.1f}"
            f"{row.requests_per_second:>9.1f}{row.ratio_to_limit or '-':>7}"
            f"{row.worst_second_ratio or '-':>9}{row.worst_ten_seconds_ratio or '-':>10}"
            f"{row.mean_in_flight:>10.1f}"
            f"{row.throttled_by_limit:>6}{row.not_modified:>9,}{row.peak_rss_mib:>9.1f}{row.exit_code:>5}"
        )
    print("\nper-asset seconds:")
    for row in rows:
        print(f"  {row.scenario}: " + ", ".join(f"{a} {row.asset_seconds.get(a, 0):.1f}" for a in ASSETS))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument(
        "--rate-limit", type=float, help="requests/s the sandbox enforces and the job is given"
    )
    parser.add_argument(
        "--unthrottled",
        action="store_true",
        help="no limit on the sandbox; the job's own pacing is set to --client-rate",
    )
    parser.add_argument("--client-rate", type=float, default=100_000, help="job pacing when --unthrottled")
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--transient-error-rate", type=float, default=0.0)
    parser.add_argument("--partition", default="2026-11-20", help="a past day, so the next day exists too")
    parser.add_argument(
        "--then",
        action="append",
        default=[],
        choices=["full-refresh", "next-day"],
        help="scenarios to run after the first one, on the same warehouse",
    )
    parser.add_argument("--results", type=Path, default=REPO / "var" / "bench" / "results.jsonl")
    arguments = parser.parse_args()
    if not arguments.unthrottled and not arguments.rate_limit:
        parser.error("give --rate-limit R or --unthrottled")

    work = REPO / "var" / "bench" / f"{arguments.accounts}-{int(time.time())}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(
        [str(BIN / "esg-report"), "keygen", "--output", str(work / "esg-report.key")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (work / "dagster_home").mkdir()
    shutil.copyfile(REPO / "dagster.yaml", work / "dagster_home" / "dagster.yaml")

    sandbox_arguments = [
        "--accounts", str(arguments.accounts), "--seed", "11", "--latency-ms", str(arguments.latency_ms),
        "--failure-rate", str(arguments.failure_rate),
        "--transient-error-rate", str(arguments.transient_error_rate),
        "--max-in-flight", str(arguments.max_in_flight),
    ]  # fmt: skip
    if arguments.rate_limit:
        sandbox_arguments += ["--rate-limit", str(arguments.rate_limit)]
    sandbox, settings = start_sandbox(sandbox_arguments, work / "sandbox.log")
    sandbox_url = settings["ESG_API_BASE_URL"].removesuffix("/esg")
    rows: list[Measurement] = []
    try:
        rows.append(scenario(arguments, "first-run", arguments.partition, work, None, settings, sandbox_url))
        for follow_up in arguments.then:
            if follow_up == "full-refresh":
                rows.append(
                    scenario(
                        arguments,
                        "full-refresh",
                        arguments.partition,
                        work,
                        {"full_refresh": True},
                        settings,
                        sandbox_url,
                    )
                )
            else:
                next_day = (date.fromisoformat(arguments.partition) + timedelta(days=1)).isoformat()
                rows.append(scenario(arguments, "next-day", next_day, work, None, settings, sandbox_url))
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=60)
    print_table(rows)
    arguments.results.parent.mkdir(parents=True, exist_ok=True)
    with arguments.results.open("a") as results:
        for row in rows:
            results.write(json.dumps(asdict(row)) + "\n")
    return 0 if all(row.exit_code == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
