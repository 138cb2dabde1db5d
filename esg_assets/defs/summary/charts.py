"""The summary's charts, drawn with matplotlib's Agg canvas into PNG bytes that the report embeds."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.defs.summary.daily_summary import HISTOGRAM_LABELS, PILLARS
from esg_assets.defs.summary.summary_report import SummaryReport
from esg_assets.defs.summary.trends import WINDOWS

STATUS_COLOURS = {"Successful": "#2e7d32", "Partial": "#f9a825", "Failed": "#c62828"}
PILLAR_COLOURS = {
    "Overall": "#37474f",
    "Environmental": "#2e7d32",
    "Social": "#1565c0",
    "Governance": "#6a1b9a",
}
FOCUS_COLOURS = {**PILLAR_COLOURS, "N/A": "#9e9e9e"}
_DPI = 100
# Margins are fixed per chart rather than computed by a layout engine, which costs more than the drawing.


@dataclass(frozen=True)
class Chart:
    name: str  # stable identifier: a file-safe word
    title: str
    description: str  # the alt text: what the chart shows, for screen readers and blocked images
    png: bytes


def draw_charts(report: SummaryReport) -> list[Chart]:
    charts = [_status_chart(report), _focus_chart(report), _histogram_chart(report)]
    if report.trends.points:
        charts.append(_trend_chart(report))
    return charts


def _png(figure: Figure) -> bytes:
    # The Agg canvas directly, not pyplot: no global figure state, safe in a run's worker thread.
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _status_chart(report: SummaryReport) -> Chart:
    counts = report.summary.counts
    statuses = [status.value for status in ProcessingStatus]
    figure = Figure(figsize=(6.4, 2.2), dpi=_DPI)
    figure.subplots_adjust(left=0.15, right=0.95, bottom=0.25, top=0.95)
    axes = figure.add_subplot()
    bars = axes.barh(statuses, [counts[s] for s in statuses], color=[STATUS_COLOURS[s] for s in statuses])
    axes.bar_label(bars, labels=[f"{counts[s]:,}" for s in statuses], padding=3)
    axes.invert_yaxis()
    axes.set_xlabel("accounts")
    axes.margins(x=0.15)
    _tidy(axes)
    return Chart(
        "status",
        "Accounts by Processing Status",
        "Bar chart of accounts by Processing Status: "
        + ", ".join(f"{status} {counts[status]:,}" for status in statuses),
        _png(figure),
    )


def _focus_chart(report: SummaryReport) -> Chart:
    focus = report.summary.primary_focus
    figure = Figure(figsize=(6.4, 2.6), dpi=_DPI)
    figure.subplots_adjust(left=0.11, right=0.98, bottom=0.12, top=0.95)
    axes = figure.add_subplot()
    bars = axes.bar(list(focus), list(focus.values()), color=[FOCUS_COLOURS[p] for p in focus])
    axes.bar_label(bars, labels=[f"{n:,}" for n in focus.values()], padding=2)
    axes.set_ylabel("accounts")
    axes.margins(y=0.2)
    _tidy(axes)
    return Chart(
        "primary_focus",
        "Primary ESG Focus",
        "Bar chart of accounts by Primary ESG Focus: " + ", ".join(f"{p} {n:,}" for p, n in focus.items()),
        _png(figure),
    )


def _histogram_chart(report: SummaryReport) -> Chart:
    histograms = report.summary.score_histograms
    figure = Figure(figsize=(8, 4.6), dpi=_DPI)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.94, hspace=0.3, wspace=0.18)
    grid = figure.subplots(2, 2, sharex=True)
    positions = range(len(HISTOGRAM_LABELS))
    for axes, pillar in zip(grid.flat, PILLARS):
        axes.bar(positions, histograms[pillar], width=0.9, color=PILLAR_COLOURS[pillar])
        axes.set_title(f"{pillar} score", fontsize=10)
        axes.set_xticks(list(positions), HISTOGRAM_LABELS, rotation=45, fontsize=8)
        _tidy(axes)
    for axes in grid[:, 0]:
        axes.set_ylabel("accounts")
    return Chart(
        "score_histograms",
        "Score distributions",
        "Histograms of the Overall, Environmental, Social and Governance scores in bins of ten points.",
        _png(figure),
    )


def _trend_chart(report: SummaryReport) -> Chart:
    trends = report.trends
    points = trends.points
    days = [point.day for point in points]
    figure = Figure(figsize=(9, 5.6), dpi=_DPI)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.9, hspace=0.3, wspace=0.18)
    (rates, duration), (throughput, scores) = figure.subplots(2, 2, sharex=True)
    _series(rates, days, [p.success_rate for p in points], "success rate", STATUS_COLOURS["Successful"])
    _series(rates, days, [p.failure_rate for p in points], "failure rate", STATUS_COLOURS["Failed"])
    rates.set_title("Success and failure rate", fontsize=10)
    rates.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    rates.set_ylim(0, 1.05)
    _series(duration, days, [_minutes(p.duration_seconds) for p in points], "run duration", "#455a64")
    duration.set_title("Run duration (minutes)", fontsize=10)
    duration.set_ylim(bottom=0)
    _series(throughput, days, [p.throughput_per_second for p in points], "requests/s", "#00838f")
    throughput.set_title("Throughput (requests per second)", fontsize=10)
    throughput.set_ylim(bottom=0)
    for pillar, column in PILLARS.items():
        _series(
            scores, days, [getattr(p, f"average_{column}") for p in points], pillar, PILLAR_COLOURS[pillar]
        )
    scores.set_title("Average scores", fontsize=10)
    short = min(WINDOWS)
    window_start = trends.end_day - timedelta(days=short - 1)
    for axes in (rates, duration, throughput, scores):
        # The short window shaded on the long one: both views in one picture.
        axes.axvspan(window_start, trends.end_day + timedelta(days=1), color="#e3f2fd", zorder=0)
        axes.set_xlim(trends.end_day - timedelta(days=max(WINDOWS) - 1), trends.end_day + timedelta(days=1))
        axes.xaxis.set_major_formatter(ConciseDateFormatter(AutoDateLocator()))
        _tidy(axes)
    rates.legend(fontsize=8, loc="best")
    scores.legend(fontsize=8, loc="best", ncols=2)
    figure.suptitle(f"Last {max(WINDOWS)} days (shaded: last {short} days)", fontsize=10)
    return Chart(
        "trends",
        f"Trends over {max(WINDOWS)} days",
        f"Line charts over the last {max(WINDOWS)} days of success and failure rate, run duration, "
        f"throughput and average scores; the last {short} days are shaded.",
        _png(figure),
    )


def _series(axes, days, values, label: str, colour: str) -> None:
    pairs = [(day, value) for day, value in zip(days, values) if value is not None]
    if pairs:
        axes.plot(*zip(*pairs), marker="o", markersize=3, linewidth=1.5, label=label, color=colour)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _tidy(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#eeeeee")
    axes.set_axisbelow(True)
