"""Long-running processes: the receiver, the worker and the SQS consumer."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence

import click
import uvicorn
from botocore.exceptions import BotoCoreError, ClientError

from s3thumbs import celery_app, metrics, server
from s3thumbs import sqs as queues
from s3thumbs.cli import wiring
from s3thumbs.cli.main import CONTEXT
from s3thumbs.config import Settings
from s3thumbs.cpus import available_cpus
from s3thumbs.logs import configure_logging
from s3thumbs.messages import QUEUE
from s3thumbs.rules import Rules

logger = logging.getLogger("s3thumbs")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int, settings: Settings) -> None:
    """Refuse a non-loopback address without S3THUMBS_AUTH_TOKEN, unless S3THUMBS_ALLOW_OPEN=1; warn
    whenever the receiver runs without a token."""
    if settings.auth_token:
        return
    if not is_loopback(host) and not settings.allow_open:
        raise click.ClickException(
            f"refusing to listen on {host} without S3THUMBS_AUTH_TOKEN; "
            "set a token, bind to 127.0.0.1, or set S3THUMBS_ALLOW_OPEN=1"
        )
    where = f"{host}:{port}" if port else host  # port 0: a free one, chosen when it binds
    logger.warning("the receiver runs without a token: anyone who reaches %s can publish tasks", where)


@click.command(context_settings=CONTEXT)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Server processes.")
def receiver(host: str, port: int, workers: int) -> None:
    """Serve the HTTP receiver (uvicorn): POST /events, /healthz, /readyz.

    Point MinIO's webhook target, an SNS HTTP(S) subscription or an EventBridge API destination
    at http://HOST:PORT/events. Without S3THUMBS_AUTH_TOKEN it refuses a non-loopback address
    unless S3THUMBS_ALLOW_OPEN=1.
    """
    settings = wiring.load_settings()
    configure_logging(settings.log_format)
    check_address(host, port, settings)
    # On loopback with no token at all, the gallery needs none either (see wiring.receiver_app).
    factory = "loopback_receiver_from_env" if is_loopback(host) else "receiver_from_env"
    uvicorn.run(
        f"s3thumbs.cli.wiring:{factory}",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        **server.options(),
    )


@click.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: Sequence[str]) -> None:
    """Run a Celery worker on the s3thumbs queue.

    Extra arguments go to `celery worker`, e.g. `s3thumbs worker --concurrency 4 --loglevel DEBUG`.
    The default concurrency is one process per CPU this worker may use (its CPU affinity, and the
    cgroup CPU limit of a container or pod, rounded up): rendering is CPU-bound, and a task makes
    its independent S3 requests at once. When S3 is tens of milliseconds away, a process or two
    more than CPUs keeps them busy (bench/README.md, pipeline.py).
    """
    settings = wiring.load_settings()
    # The pool processes write their metrics to files in this folder, which this process sums.
    folder = os.environ.get(metrics.MULTIPROC_ENV)
    own_folder = folder is None
    if folder is None:
        folder = tempfile.mkdtemp(prefix="s3thumbs-metrics-")
    metrics.multiprocess_mode(folder)
    try:
        app = wiring.worker_app(settings)
        metrics.serve_worker_metrics(settings.metrics_port, celery_app.queue_depth(app))
        app.worker_main(worker_argv(celery_args, available_cpus()))
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)


def worker_argv(celery_args: Sequence[str], cpus: int) -> list[str]:
    """`celery worker`'s arguments: ours, then the user's; ``--concurrency cpus`` unless they chose."""
    chosen = any(
        arg in ("-c", "--concurrency", "--autoscale")
        or arg.startswith(("--concurrency=", "--autoscale="))
        or (arg.startswith("-c") and not arg.startswith("--"))
        for arg in celery_args
    )
    default = [] if chosen else ["--concurrency", str(cpus)]
    return ["worker", "--queues", QUEUE, "--loglevel", "INFO", *default, *celery_args]


@click.command(context_settings=CONTEXT)
@click.argument("queue_url")
@click.option(
    "--wait",
    default=20,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Seconds each receive waits for messages (long poll; SQS allows 20 at most).",
)
@click.option(
    "--endpoint-url",
    default=None,
    help="SQS endpoint, for LocalStack or moto. Default: AWS, in the region of QUEUE_URL.",
)
def sqs(queue_url: str, wait: int, endpoint_url: str | None) -> None:
    """Consume S3 notifications from the SQS queue QUEUE_URL and publish one task per object.

    For AWS without a public receiver endpoint: S3 → SQS, S3 → SNS → SQS, or EventBridge → SQS.
    A message is deleted only once its tasks are on the broker; while the broker is down it stays,
    and SQS delivers it again after the queue's visibility timeout. Bodies that can never succeed
    are logged and deleted; a redrive policy with a dead-letter queue is still recommended. Needs
    sqs:ReceiveMessage and sqs:DeleteMessage on the queue (and kms:Decrypt if it is KMS-encrypted).
    SIGTERM or Ctrl-C stops after the batch in hand.
    """
    settings = wiring.load_settings()
    configure_logging(settings.log_format)
    try:
        client = queues.make_client(queue_url, endpoint_url)
    except BotoCoreError as e:
        raise click.ClickException(str(e)) from e
    publish = wiring.publisher(settings)
    consumer = queues.Consumer(client, queue_url, publish, Rules.from_settings(settings), wait_seconds=wait)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("%s: stopping after the batch in hand", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        consumer.run(stop)
    except (BotoCoreError, ClientError) as e:
        raise click.ClickException(f"{queue_url}: {e}") from e
    finally:
        publish.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
