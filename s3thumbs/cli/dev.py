"""``s3thumbs dev``: the whole pipeline in this one process (the embedded stack is ``s3thumbs.dev``)."""

from __future__ import annotations

import os
import socket
import sys

import boto3
import click

from s3thumbs import dev as devmode
from s3thumbs.cli import wiring
from s3thumbs.cli.main import CONTEXT
from s3thumbs.cli.services import check_address, is_loopback
from s3thumbs.logs import configure_logging
from s3thumbs.messages import QUEUE
from s3thumbs.status import InProcessStatuses


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for the S3 endpoint and receiver.")
@click.option(
    "--s3-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the embedded S3 endpoint (0: any free port).",
)
@click.option(
    "--receiver-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the receiver (0: any free port).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Upload one generated image of every supported kind (and one that "
    "is not an image) and show them in the gallery.",
)
def dev(host: str, s3_port: int, receiver_port: int, demo: bool) -> None:
    """Run the whole pipeline here, with no outside server: upload, and thumbnails appear.

    Starts an embedded S3 endpoint (moto) with the bucket `uploads`, whose notifications reach the
    receiver through SNS exactly as on AWS, the receiver, and a worker on an in-process broker
    (or on S3THUMBS_BROKER_URL when set). Prints the endpoint, credentials, an upload command and
    the gallery's address. Ctrl-C stops everything.
    """
    env = devmode.dev_environment(os.environ)
    # Checked before anything listens: the same rule as `s3thumbs receiver`.
    check_address(host, receiver_port, wiring.load_settings(env))
    s3_server, s3_url = devmode.start_s3(host, s3_port)
    try:
        env["S3THUMBS_S3_ENDPOINT_URL"] = s3_url
        devmode.apply_environment(env)
        settings = wiring.load_settings()
        configure_logging(settings.log_format)
        # One process: receiver and worker can share statuses without any server.
        statuses = None if settings.result_backend else InProcessStatuses()
        app = wiring.worker_app(settings, statuses)

        def run_worker() -> None:
            app.Worker(
                pool="threads",
                concurrency=os.cpu_count() or 2,
                queues=[QUEUE],
                loglevel="INFO",
                without_mingle=True,
                without_gossip=True,
                without_heartbeat=True,
                hostname=f"s3thumbs-dev@{socket.gethostname()}",
            ).start()

        def show(line: str) -> None:
            click.echo(line)
            sys.stdout.flush()

        session = boto3.session.Session()
        devmode.serve(
            settings,
            wiring.receiver_app(settings, statuses, loopback=is_loopback(host)),
            run_worker,
            session.client("s3", endpoint_url=s3_url),
            session.client("sns", endpoint_url=s3_url),
            s3_url,
            show,
            host,
            receiver_port,
            demo=demo,
            gallery=settings.gallery_on(is_loopback(host)),
        )
    finally:
        s3_server.stop()
