"""The run worker's resource use, as the day's steps record it: CPU, memory, warehouse, spill."""

from __future__ import annotations

import resource
import sys

from esg_assets.core.run_metadata import ResourceFigures
from esg_assets.lib.warehouse.resource import WarehouseResource

# ru_maxrss is in KiB on Linux (bytes on macOS).
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


def resource_figures(warehouse: WarehouseResource) -> ResourceFigures:
    """This process's figures so far: with the in-process executor, the run worker that runs every step.

    CPU and peak RSS are the process's since it started (``getrusage(RUSAGE_SELF)``: all its threads, the
    fetch pool's and DuckDB's included, and its start-up); a run worker runs one run, so they are the run's.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ResourceFigures(
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_bytes=peak_rss_bytes(),
        warehouse_size_bytes=warehouse.size_bytes(),
        spill_bytes=warehouse.spill_peak_bytes(),
    )


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT
