"""Logging for s3thumbs processes: text or JSON lines on stderr, configured once by the command line.

The library modules only log; this module decides how lines look. Keys, bucket names and the
errors about them are written by whoever uploads: every control character in a logged value is
escaped (a key with a newline must not forge a line of its own), in our lines and in Celery's. In
a worker, every line logged while a task runs carries that task's id (JSON logs).
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from celery import current_task, signals
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as an escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


class EscapeControls(logging.Filter):
    """Escapes control characters in a record's message, arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = escape_controls(message), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = _escaped_traceback(record.exc_info[1])
        return True


def _escaped_traceback(error: BaseException) -> str:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # the causes, as Python prints them: oldest first
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for depth, exception in enumerate(reversed(chain)):
        if depth:
            explicit = chain[len(chain) - depth].__cause__ is exception
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if explicit
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        frames = "".join(traceback.format_tb(exception.__traceback__))
        head = "Traceback (most recent call last):\n" if frames else ""
        name = type(exception).__module__ + "." + type(exception).__qualname__
        name = name.removeprefix("builtins.")
        text = escape_controls(str(exception))
        parts.append(f"{head}{frames}{name}: {text}\n" if text else f"{head}{frames}{name}\n")
    return "".join(parts).rstrip("\n")


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter S3THUMBS_LOG_FORMAT asks for."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Log to stderr, as text or as one JSON object per line, control characters escaped."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(EscapeControls())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def with_task_id(record: logging.LogRecord) -> bool:
    """Give every line logged while a task runs its ``task_id``, unless it has one."""
    if not hasattr(record, "task_id"):
        task_id = current_task.request.id if current_task else None
        if task_id:
            record.task_id = task_id
    return True


def celery_logs(log_format: str) -> None:
    """Make the handlers Celery sets up in a worker escape control characters and, for JSON, write
    JSON lines that carry the task id."""

    def adapt(logger: logging.Logger, **_: Any) -> None:
        for handler in logger.handlers:
            if log_format == "json":
                handler.setFormatter(make_formatter("json"))
                handler.addFilter(with_task_id)
            handler.addFilter(EscapeControls())

    signals.after_setup_logger.connect(adapt, weak=False)
    signals.after_setup_task_logger.connect(adapt, weak=False)
