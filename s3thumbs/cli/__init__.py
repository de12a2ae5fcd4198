"""The ``s3thumbs`` command: the composition root, where settings, clients and apps are built.

``services`` holds the long-running processes (receiver, worker, sqs, dev), ``operations`` the
one-shot commands (thumbnail, backfill, notify, dead-letters).
"""

from __future__ import annotations

import logging
import os

import click

from s3thumbs import __version__
from s3thumbs.config import Settings
from s3thumbs.errors import ConfigError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the environment, or exit with the one line that names the bad variable."""
    try:
        return Settings.from_env(os.environ if environ is None else environ)
    except ConfigError as e:
        raise click.ClickException(f"invalid configuration: {e}") from e


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Log to stderr, as text or as one JSON object per line."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter S3THUMBS_LOG_FORMAT asks for."""
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                             rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="s3thumbs")
def main() -> None:
    """Thumbnails for S3-compatible buckets, driven by upload notifications.

    An upload notification (MinIO webhook, or AWS S3 through SNS, SQS or EventBridge) reaches the
    receiver, which puts one Celery task per object on the broker; workers write each size under
    thumbnails/{W}x{H}/{key}. Configuration comes from S3THUMBS_* environment variables; AWS
    credentials from boto3's usual chain. Start with `s3thumbs dev`.
    """


# Registers the commands on ``main``.
from s3thumbs.cli import operations, services  # noqa: E402, F401
