"""Logging for s3thumbs processes: text or JSON lines on stderr, configured once by the command line.

The library modules only log; this module decides how lines look. In a worker, every line logged
while a task runs carries that task's id (JSON logs).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_task, signals
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter S3THUMBS_LOG_FORMAT asks for."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Log to stderr, as text or as one JSON object per line."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def with_task_id(record: logging.LogRecord) -> bool:
    """Give every line logged while a task runs its ``task_id``, unless it has one."""
    if not hasattr(record, "task_id"):
        task_id = current_task.request.id if current_task else None
        if task_id:
            record.task_id = task_id
    return True


def celery_json_logs() -> None:
    """Make the handlers Celery sets up in a worker write JSON lines that carry the task id."""

    def json_logs(logger: logging.Logger, **_: Any) -> None:
        for handler in logger.handlers:
            handler.setFormatter(make_formatter("json"))
            handler.addFilter(with_task_id)

    signals.after_setup_logger.connect(json_logs, weak=False)
    signals.after_setup_task_logger.connect(json_logs, weak=False)
