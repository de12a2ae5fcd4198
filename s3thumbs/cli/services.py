"""Long-running processes: the receiver, the worker, the SQS consumer and dev mode."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from s3thumbs.cli import CONTEXT, configure_logging, load_settings, main, make_formatter
from s3thumbs.config import Settings

logger = logging.getLogger("s3thumbs")


def build_receiver(settings: Settings, statuses: Any = None) -> Any:
    """The receiver app, publishing to the configured broker; statuses from the result backend's Redis."""
    import httpx

    from s3thumbs import celery_app
    from s3thumbs.gallery import URL_LIFETIME, Gallery
    from s3thumbs.receiver import Rules, create_app
    from s3thumbs.sns import Verifier
    from s3thumbs.status import StatusStore, queued_recorder, skipped_recorder
    from s3thumbs.storage import make_client

    app = celery_app.create_app(settings, results=False)
    verifier = Verifier(topics=settings.sns_topics) if settings.sns_verify else None
    if settings.sns_verify and settings.sns_topics is None:
        logger.warning("S3THUMBS_SNS_VERIFY=1 without S3THUMBS_SNS_TOPICS: SNS messages signed for any "
                       "topic, anyone's, are accepted")

    def confirm(url: str) -> None:
        httpx.get(url, timeout=10).raise_for_status()

    rules = Rules(settings.layout, settings.buckets, settings.max_bytes, settings.sns_topics)
    publisher = celery_app.Publisher(app)
    store = statuses if statuses is not None else StatusStore.from_backend(settings.result_backend)
    # Presigning is local (no request); the URLs must name an endpoint the browser can reach.
    signer = make_client(settings.public_s3_url or settings.s3_endpoint_url)
    gallery = Gallery(store, lambda bucket, key: signer.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_LIFETIME), settings.layout)
    return create_app(
        queued_recorder(publisher, store),
        token=settings.auth_token,
        rules=rules,
        max_body_bytes=settings.max_body_bytes,
        ready=lambda: celery_app.broker_ready(app),
        confirm=confirm,
        verify=verifier,
        # RabbitMQ's confirms keep a batch waiting for milliseconds: a second thread sends the next
        # batch meanwhile. A Redis batch is one quick round trip; a second thread only adds contention.
        publisher_threads=2 if publisher.confirms else 1,
        gallery=gallery,
        record_skipped=skipped_recorder(store),
    )


def receiver_from_env() -> Any:
    """Factory for uvicorn (``--workers`` > 1 imports the app by name in each process)."""
    settings = load_settings()
    configure_logging(settings.log_format)
    return build_receiver(settings)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command(context_settings=CONTEXT)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Server processes.")
def receiver(host: str, port: int, workers: int) -> None:
    """Serve the HTTP receiver (uvicorn): POST /events, /healthz, /readyz.

    Point MinIO's webhook target, an SNS HTTP(S) subscription or an EventBridge API destination
    at http://HOST:PORT/events. Without S3THUMBS_AUTH_TOKEN it refuses a non-loopback address
    unless S3THUMBS_ALLOW_OPEN=1.
    """
    import uvicorn

    settings = load_settings()
    configure_logging(settings.log_format)
    if not settings.auth_token:
        if not _is_loopback(host) and not settings.allow_open:
            raise click.ClickException(
                f"refusing to listen on {host} without S3THUMBS_AUTH_TOKEN; "
                "set a token, bind to 127.0.0.1, or set S3THUMBS_ALLOW_OPEN=1")
        logger.warning("the receiver runs without a token: anyone who reaches %s:%d can publish tasks",
                       host, port)
    uvicorn.run("s3thumbs.cli.services:receiver_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, proxy_headers=False)


@main.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: Sequence[str]) -> None:
    """Run a Celery worker on the s3thumbs queue.

    Extra arguments go to `celery worker`, e.g. `s3thumbs worker --concurrency 4 --loglevel DEBUG`.
    The default concurrency is one process per CPU this worker may use (its CPU affinity, and the
    cgroup CPU limit of a container or pod, rounded up): rendering is CPU-bound, and a task makes
    its independent S3 requests at once. When S3 is tens of milliseconds away, a process or two
    more than CPUs keeps them busy (bench/README.md, pipeline.py).
    """
    settings = load_settings()
    # The pool processes write their metrics to files in this folder, which the parent sums; it
    # must be set before prometheus-client is first imported.
    own_folder = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="s3thumbs-metrics-")
    from s3thumbs import metrics

    try:
        app = build_worker_app(settings)
        metrics.serve_worker_metrics(settings.metrics_port, metrics.broker_queue_depth(app))
        app.worker_main(worker_argv(celery_args, available_cpus()))
    finally:
        if own_folder:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_argv(celery_args: Sequence[str], cpus: int) -> list[str]:
    """`celery worker`'s arguments: ours, then the user's; ``--concurrency cpus`` unless they chose."""
    chosen = any(arg in ("-c", "--concurrency", "--autoscale")
                 or arg.startswith(("--concurrency=", "--autoscale="))
                 or (arg.startswith("-c") and not arg.startswith("--"))
                 for arg in celery_args)
    default = [] if chosen else ["--concurrency", str(cpus)]
    return ["worker", "--queues", "s3thumbs", "--loglevel", "INFO", *default, *celery_args]


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by its cgroup's CPU limit, rounded up.

    Celery's own default counts the machine's CPUs, which in a container or pod is the node's, not
    what the container may use.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit - 0.001)))
    return max(1, cpus)


def cgroup_cpu_limit(root: Path, proc_cgroup: Path) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 CFS quota) of this process or an ancestor; None if unlimited."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            limits += [_ratio(d / "cpu.max", None) for d in _ancestors(root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1
            base = root / controllers if (root / controllers).is_dir() else root / "cpu"
            limits += [_ratio(d / "cpu.cfs_quota_us", d / "cpu.cfs_period_us") for d in _ancestors(base, path)]
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _ancestors(base: Path, path: str) -> list[Path]:
    parts = [part for part in path.split("/") if part]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _ratio(quota_file: Path, period_file: Path | None) -> float | None:
    """quota / period, from ``cpu.max`` ("max 100000", "150000 100000") or the two v1 files."""
    try:
        if period_file is None:
            quota, period = quota_file.read_text().split()[:2]
        else:
            quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def with_task_id(record: logging.LogRecord) -> bool:
    """Give every line logged while a task runs its ``task_id`` (JSON logs), unless it has one."""
    if not hasattr(record, "task_id"):
        from celery import current_task

        task_id = current_task.request.id if current_task else None
        if task_id:
            record.task_id = task_id
    return True


def build_worker_app(settings: Settings, statuses: Any = None) -> Any:
    """The Celery app with its tasks registered, and logging as the settings ask."""
    from celery import signals

    from s3thumbs import celery_app, deadletters, tasks

    app = celery_app.create_app(settings)
    tasks.register(app, settings, tasks.storage_per_process(settings.s3_endpoint_url), statuses)
    deadletters.install(app)

    if settings.log_format == "json":
        def json_logs(logger: logging.Logger, **_: Any) -> None:
            for handler in logger.handlers:
                handler.setFormatter(make_formatter("json"))
                handler.addFilter(with_task_id)

        signals.after_setup_logger.connect(json_logs, weak=False)
        signals.after_setup_task_logger.connect(json_logs, weak=False)
    return app


@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for the S3 endpoint and receiver.")
@click.option("--s3-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the embedded S3 endpoint (0: any free port).")
@click.option("--receiver-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the receiver (0: any free port).")
@click.option("--demo", is_flag=True, help="Upload one generated image of every supported kind (and one that "
              "is not an image) and show them in the gallery.")
def dev(host: str, s3_port: int, receiver_port: int, demo: bool) -> None:
    """Run the whole pipeline here, with no outside server: upload, and thumbnails appear.

    Starts an embedded S3 endpoint (moto) with the bucket `uploads`, whose notifications reach the
    receiver through SNS exactly as on AWS, the receiver, and a worker on an in-process broker
    (or on S3THUMBS_BROKER_URL when set). Prints the endpoint, credentials, an upload command and
    the gallery's address. Ctrl-C stops everything.
    """
    import boto3

    from s3thumbs import dev as devmode

    env = devmode.dev_environment(os.environ)
    s3_server, s3_url = devmode.start_s3(host, s3_port)
    try:
        env["S3THUMBS_S3_ENDPOINT_URL"] = s3_url
        devmode.apply_environment(env)
        settings = load_settings()
        configure_logging(settings.log_format)
        from s3thumbs.status import InProcessStatuses

        # One process: receiver and worker can share statuses without any server.
        statuses = None if settings.result_backend else InProcessStatuses()
        app = build_worker_app(settings, statuses)

        def run_worker() -> None:
            app.Worker(pool="threads", concurrency=os.cpu_count() or 2, queues=["s3thumbs"],
                       loglevel="INFO", without_mingle=True, without_gossip=True,
                       without_heartbeat=True, hostname=f"s3thumbs-dev@{socket.gethostname()}").start()

        def show(line: str) -> None:
            click.echo(line)
            sys.stdout.flush()

        session = boto3.session.Session()
        devmode.serve(settings, build_receiver(settings, statuses), run_worker,
                      session.client("s3", endpoint_url=s3_url), session.client("sns", endpoint_url=s3_url),
                      s3_url, show, host, receiver_port, demo=demo)
    finally:
        s3_server.stop()


@main.command(context_settings=CONTEXT)
@click.argument("queue_url")
@click.option("--wait", default=20, show_default=True, type=click.IntRange(0, 20),
              help="Seconds each receive waits for messages (long poll; SQS allows 20 at most).")
@click.option("--endpoint-url", default=None,
              help="SQS endpoint, for LocalStack or moto. Default: AWS, in the region of QUEUE_URL.")
def sqs(queue_url: str, wait: int, endpoint_url: str | None) -> None:
    """Consume S3 notifications from the SQS queue QUEUE_URL and publish one task per object.

    For AWS without a public receiver endpoint: S3 → SQS, S3 → SNS → SQS, or EventBridge → SQS.
    A message is deleted only once its tasks are on the broker; while the broker is down it stays,
    and SQS delivers it again after the queue's visibility timeout. Bodies that can never succeed
    are logged and deleted; a redrive policy with a dead-letter queue is still recommended. Needs
    sqs:ReceiveMessage and sqs:DeleteMessage on the queue (and kms:Decrypt if it is KMS-encrypted).
    SIGTERM or Ctrl-C stops after the batch in hand.
    """
    import signal
    import threading

    from botocore.exceptions import BotoCoreError, ClientError

    from s3thumbs import celery_app
    from s3thumbs import sqs as queues
    from s3thumbs.receiver import Rules

    settings = load_settings()
    configure_logging(settings.log_format)
    app = celery_app.create_app(settings, results=False)
    rules = Rules(settings.layout, settings.buckets, settings.max_bytes, settings.sns_topics)
    try:
        client = queues.make_client(queue_url, endpoint_url)
    except BotoCoreError as e:
        raise click.ClickException(str(e)) from e
    consumer = queues.Consumer(client, queue_url, lambda events: celery_app.publish(app, events), rules,
                               wait_seconds=wait)
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
