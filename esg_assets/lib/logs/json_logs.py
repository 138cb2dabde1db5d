"""JSON-lines logs of the job: one object per line to stdout and to a rotating file that log shippers tail.

The file is ``<log_dir>/esg-job.jsonl``, rotated by size (``RotatingFileHandler``) rather than by time: disk
use stays bounded however much a bad day logs. Rotation renames the file and opens a new one, which Filebeat
(``filestream``) and Fluent Bit (``tail``) follow by inode, reading the renamed file to its end; point them at
``esg-job.jsonl`` itself, not at a glob that also matches the ``.1``, ``.2`` backups. Python's handlers do not
coordinate rotation across processes: give each process that logs (run worker, code server) its own log_dir.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, TextIO

from esg_assets.core.private_files import make_private, private_directory
from esg_assets.core.redaction import redact_text, redact_value

LOG_FILE_NAME = "esg-job.jsonl"
PROJECT_LOGGER = "esg_assets"

# The run a line belongs to. A ContextVar, not a LoggerAdapter, so modules keep plain module-level loggers;
# worker threads do not inherit it: submit their work with `contextvars.copy_context().run`.
_run_context: ContextVar[Mapping[str, Any]] = ContextVar("esg_run_context", default={})

# Everything a LogRecord carries on its own; any other attribute came from `extra={...}` or the run context.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextmanager
def job_log_context(
    run_id: str | None, partition: str | None, asset: str | None = None, **fields: Any
) -> Iterator[None]:
    """Every line logged inside the block carries ``run_id``, ``partition``, ``asset`` and ``fields``.

    Nested blocks add to (and may override) the outer context; leaving a block restores it.
    """
    bound = {"run_id": run_id, "partition": partition, "asset": asset, **fields}
    token = _run_context.set({**_run_context.get(), **{k: v for k, v in bound.items() if v is not None}})
    try:
        yield
    finally:
        _run_context.reset(token)


class RunContextFilter(logging.Filter):
    """Copies the bound run context onto each record; a field given in ``extra`` wins over the context."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _run_context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactionFilter(logging.Filter):
    """Masks secrets and account names in a record's extra fields and message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in _extra_names(record):
            setattr(record, name, redact_value(name, getattr(record, name)))
        try:
            message = record.getMessage()
        except Exception:  # a bad format call: left to the handler, which reports it instead of raising
            return True
        # Formatted once here so every handler sees the masked text; with args cleared, later
        # getMessage() calls return it unchanged.
        record.msg, record.args = redact_text(message), None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp (UTC), level, logger, message, event, then every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "event": getattr(record, "event", None),
        }
        for name in _extra_names(record):
            entry.setdefault(name, getattr(record, name))
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_json_logging(
    log_dir: str | Path,
    stream: TextIO | None = None,
    *,
    logger_name: str = PROJECT_LOGGER,
    level: int = logging.INFO,
    max_bytes: int = 50 * 1024 * 1024,
    backup_count: int = 10,
) -> logging.Logger:
    """Sends the records of ``logger_name`` (and its children) as JSON lines to ``stream`` and the file.

    ``stream`` defaults to ``sys.stdout`` as it is when called (not when this module was imported).

    Idempotent: a second call replaces the handlers of the first (closing the file) instead of adding more,
    so a line is never written twice; a new ``log_dir`` or ``stream`` takes effect.
    """
    logger = logging.getLogger(logger_name)
    for handler in [h for h in logger.handlers if getattr(h, "_esg_json_handler", False)]:
        logger.removeHandler(handler)
        handler.close()

    directory = Path(log_dir)
    private_directory(directory)
    make_private(directory / LOG_FILE_NAME)  # a file made before the job's files were private
    handlers: list[logging.Handler] = [
        logging.StreamHandler(stream or sys.stdout),
        RotatingFileHandler(
            directory / LOG_FILE_NAME, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        ),
    ]
    for handler in handlers:
        handler._esg_json_handler = True  # type: ignore[attr-defined]
        # Filters on the handler, not the logger: a logger's filters skip records from its child loggers.
        handler.addFilter(RunContextFilter())
        handler.addFilter(RedactionFilter())
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return logger


def _extra_names(record: logging.LogRecord) -> list[str]:
    return [name for name in vars(record) if name not in _RECORD_ATTRIBUTES and not name.startswith("_")]
