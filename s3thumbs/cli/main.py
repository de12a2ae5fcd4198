"""The ``s3thumbs`` command group, with its commands listed in one table.

Each command is imported only when it runs (click's lazy-loading recipe), so that, say, a receiver
never loads the embedded S3 server of ``s3thumbs dev``.
"""

from __future__ import annotations

import importlib

import click

from s3thumbs import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# command name -> "module:attribute" of its click command.
COMMANDS = {
    "receiver": "s3thumbs.cli.services:receiver",
    "worker": "s3thumbs.cli.services:worker",
    "sqs": "s3thumbs.cli.services:sqs",
    "dev": "s3thumbs.cli.dev:dev",
    "thumbnail": "s3thumbs.cli.operations:thumbnail",
    "backfill": "s3thumbs.cli.operations:backfill",
    "notify": "s3thumbs.cli.operations:notify",
    "dead-letters": "s3thumbs.cli.operations:dead_letters",
}


class CommandTable(click.Group):
    """A group whose commands come from a table of import paths, imported when first asked for."""

    def __init__(self, *args: object, table: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.table:
            return None
        module, _, attribute = self.table[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.table[cmd_name]} is not a click command")
        return command


@click.group(cls=CommandTable, table=COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="s3thumbs")
def main() -> None:
    """Thumbnails for S3-compatible buckets, driven by upload notifications.

    An upload notification (MinIO webhook, or AWS S3 through SNS, SQS or EventBridge) reaches the
    receiver, which puts one Celery task per object on the broker; workers write each size under
    thumbnails/{W}x{H}/{key}. Configuration comes from S3THUMBS_* environment variables; AWS
    credentials from boto3's usual chain. Start with `s3thumbs dev`.
    """
