"""JSON logs wired into the job: each asset step of the run worker, and the process evaluating the sensors.

``@logged_step`` goes under an asset's ``@asset(...)``, whose function takes the ``job_logs`` resource
(``JobLogsResource``, ESG_LOG_DIR). In whatever process executes the step (the run worker a launcher starts,
`dagster asset materialize`, a test's ``materialize``) it configures ``configure_json_logging`` there once,
binds the run id, partition and asset to every line the step's code logs (``job_log_context``), and logs the
step's start, its end with the counts of its result's metadata, and its error with the traceback. The Dagster
run log keeps its own events and ``context.log`` messages as before.

Not a Dagster ``@logger``: Dagster starts a custom logger only for runs whose run config names it, which
`dagster asset materialize` and the UI's runs do not.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.private_files import make_process_private
from esg_assets.lib.logs.json_logs import configure_json_logging, job_log_context

logger = logging.getLogger(__name__)

# The code server's own file: a RotatingFileHandler cannot share its file with another process.
SENSOR_LOG_SUBDIRECTORY = "sensors"

_configured_for: tuple[int, Path] | None = None


class JobLogsResource(ConfigurableResource):
    """Where JSON-lines logs go (ESG_LOG_DIR): the run workers' ``esg-job.jsonl``, the sensors' below it."""

    log_dir: str = settings.LOG_DIR.default  # type: ignore[assignment]

    def configure_for_run(self) -> None:
        """JSON lines of this process under ``log_dir``; once per process (and directory)."""
        _configure_once(Path(self.log_dir))

    def configure_for_sensors(self) -> None:
        """JSON lines of the process evaluating sensors (the code server), under ``log_dir``/sensors.

        Sensors have no start-up hook: each calls this first, so alert delivery (and its failures) is logged
        where the log shipper looks.
        """
        _configure_once(Path(self.log_dir) / SENSOR_LOG_SUBDIRECTORY)


def logged_step(compute_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates an asset function (the line under ``@asset(...)`` or ``@multi_asset(...)``) with JSON lines
    of its start, end and error; a generator's results are logged as it yields them.

    ``functools.wraps`` keeps the signature Dagster reads (context, config, resources) and the asset's name.
    """
    if inspect.isgeneratorfunction(compute_fn):

        @functools.wraps(compute_fn)
        def generator_step(context, *args, **kwargs):
            with _logged(context) as finished:
                counts: dict[str, int | float] = {}
                for result in compute_fn(context, *args, **kwargs):
                    counts.update(_numbers(getattr(result, "metadata", None) or {}))
                    yield result
                finished(counts)

        return generator_step

    @functools.wraps(compute_fn)
    def step(context, *args, **kwargs):
        with _logged(context) as finished:
            result = compute_fn(context, *args, **kwargs)
            finished(_numbers(getattr(result, "metadata", None) or {}))
            return result

    return step


@contextmanager
def _logged(context) -> Iterator[Callable[[dict], None]]:
    context.resources.job_logs.configure_for_run()
    keys = sorted(key.to_user_string() for key in context.selected_asset_keys)
    asset = keys[0] if len(keys) == 1 else context.op_def.name
    partition = context.partition_key if context.has_partition_key else None
    # The step as Dagster names it: the asset's own op, or an op of a graph-backed asset with its mapping key
    # (esg_ratings.fetch_shard[shard_1_of_2]).
    # (Through op_execution_context: on an asset's context the two are deprecated.)
    op_context = context.op_execution_context
    mapping_key = op_context.get_mapping_key()
    step = str(op_context.op_handle) + (f"[{mapping_key}]" if mapping_key else "")
    with job_log_context(context.run.run_id, partition, asset, step=step):
        started = time.monotonic()
        logger.info("%s started", step, extra={"event": "asset_started"})

        def finished(counts: dict) -> None:
            seconds = round(time.monotonic() - started, 3)
            logger.info(
                "%s finished in %.1f s",
                step,
                seconds,
                extra={"event": "asset_finished", "duration_seconds": seconds, "counts": counts},
            )

        try:
            yield finished
        except BaseException:
            seconds = round(time.monotonic() - started, 3)
            logger.exception("%s failed", step, extra={"event": "asset_failed", "duration_seconds": seconds})
            raise


def _configure_once(directory: Path) -> None:
    global _configured_for
    target = (os.getpid(), directory)
    if _configured_for != target:  # configure_json_logging reopens the file: not once per step or tick
        make_process_private()  # the first step (or sensor tick) of a process: before it creates any file
        configure_json_logging(directory)
        _configured_for = target


def _numbers(metadata: Mapping[str, Any]) -> dict[str, int | float]:
    # Counts, rates and durations only: text metadata (locations, markdown) stays in the Dagster UI.
    values = {name: getattr(value, "value", value) for name, value in metadata.items()}
    return {name: v for name, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
