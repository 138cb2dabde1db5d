"""``esg-report history --days N``: the job's recent days as a table, from the warehouse opened read-only."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb

from esg_assets.cli.common import EXIT_FAILED, CommandError, parse_day, warehouse
from esg_assets.config.environment import now
from esg_assets.core.partitions import JOB_TIMEZONE
from esg_assets.core.settings import WAREHOUSE_PATH
from esg_assets.defs.summary import formatting as fmt
from esg_assets.defs.summary.trends import DayPoint, daily_points, window_of

_COLUMNS = (
    # heading, width, value of a day
    ("day", 10, lambda p: p.day.isoformat()),
    ("runs", 4, lambda p: str(p.runs)),
    ("duration", 8, lambda p: fmt.duration(p.duration_seconds)),
    ("accounts", 9, lambda p: fmt.count(p.accounts)),
    ("success", 7, lambda p: fmt.percent(p.success_rate)),
    ("partial", 7, lambda p: fmt.count(p.partial)),
    ("failed", 7, lambda p: fmt.percent(p.failure_rate)),
    (
        "req/s",
        7,
        lambda p: fmt.MISSING if p.throughput_per_second is None else f"{p.throughput_per_second:.1f}",
    ),
    ("retries", 7, lambda p: fmt.count(p.retries)),
    ("429s", 6, lambda p: fmt.count(p.throttled)),
    ("304s", 8, lambda p: fmt.count(p.not_modified)),
    ("overall", 7, lambda p: fmt.score(p.average_overall)),
)


class HistoryCommand:
    """``history --days N [--until YYYY-MM-DD]``: one line per day with runs or ratings, and the averages."""

    def add_parser(self, subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name,
            help="print the last N days of runs: duration, success and failure rates, throughput, scores",
            description=f"Print one line per day from the warehouse named by {WAREHOUSE_PATH.name} (opened "
            "read-only): the day's main run (duration, requests per second, retries, 429s, 304s) and its "
            "final ratings (accounts, success and failure rates, average Overall score), then the averages.",
        )
        parser.add_argument("--days", type=_positive_days, default=30, metavar="N", help="days to show (30)")
        parser.add_argument(
            "--until",
            type=parse_day,
            metavar="YYYY-MM-DD",
            help="last day shown (default: today, America/Chicago)",
        )
        return parser

    def run(self, args: argparse.Namespace) -> int:
        until = args.until or datetime.now(ZoneInfo(JOB_TIMEZONE)).date()
        print(history_table(read_history(until, args.days), until, args.days))
        return 0


def read_history(until: date, days: int) -> list[DayPoint]:
    with warehouse(read_only=True) as connection:
        try:
            return daily_points(connection, until, days)
        except duckdb.CatalogException:
            raise CommandError(
                f"the warehouse {now(WAREHOUSE_PATH)} holds no run history yet", EXIT_FAILED
            ) from None


def history_table(points: list[DayPoint], until: date, days: int) -> str:
    window = window_of(points, until, days)
    first = points[0].day.isoformat() if points else "-"
    lines = [
        f"ESG ratings job, last {days} days to {until.isoformat()}: {len(points)} with data (first {first})"
    ]
    if not points:
        return lines[0] + "\nNo runs or ratings in this period."
    lines.append(_row(heading for heading, _, _ in _COLUMNS))
    lines += [_row(value(point) for _, _, value in _COLUMNS) for point in points]
    means = window.means
    lines += [
        "",
        f"averages per day: success {fmt.percent(means['success_rate'])}, "
        f"failure {fmt.percent(means['failure_rate'])}, duration {fmt.duration(means['duration_seconds'])}, "
        f"throughput {fmt.per_second(means['throughput_per_second'])}, "
        f"Overall {fmt.score(means['average_overall'])}",
    ]
    return "\n".join(lines)


def _row(texts) -> str:
    # The day reads left to right, the numbers line up on the right.
    cells = [
        text.ljust(width) if index == 0 else text.rjust(width)
        for index, (text, (_, width, _)) in enumerate(zip(texts, _COLUMNS))
    ]
    return "  ".join(cells).rstrip()


def _positive_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if not 1 <= value <= 3660:
        raise argparse.ArgumentTypeError(f"must be between 1 and 3660 days, got {text}")
    return value
