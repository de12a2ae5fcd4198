"""The ``s3thumbs`` command: the composition root, where settings, clients and apps are built."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click

from s3thumbs import __version__
from s3thumbs.config import Settings
from s3thumbs.errors import ConfigError, PermanentFailure

logger = logging.getLogger("s3thumbs")

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


def build_receiver(settings: Settings) -> Any:
    """The receiver app, publishing to the configured broker."""
    import httpx

    from s3thumbs import celery_app
    from s3thumbs.receiver import Rules, create_app
    from s3thumbs.sns import Verifier

    app = celery_app.create_app(settings, results=False)
    verifier = Verifier(topics=settings.sns_topics) if settings.sns_verify else None
    if settings.sns_verify and settings.sns_topics is None:
        logger.warning("S3THUMBS_SNS_VERIFY=1 without S3THUMBS_SNS_TOPICS: SNS messages signed for any "
                       "topic, anyone's, are accepted")

    def confirm(url: str) -> None:
        httpx.get(url, timeout=10).raise_for_status()

    rules = Rules(settings.layout, settings.buckets, settings.max_bytes, settings.sns_topics)
    return create_app(
        lambda events: celery_app.publish(app, events),
        token=settings.auth_token,
        rules=rules,
        max_body_bytes=settings.max_body_bytes,
        ready=lambda: celery_app.broker_ready(app),
        confirm=confirm,
        verify=verifier,
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
    uvicorn.run("s3thumbs.cli:receiver_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, proxy_headers=False)


@main.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: Sequence[str]) -> None:
    """Run a Celery worker on the s3thumbs queue.

    Extra arguments go to `celery worker`, e.g. `s3thumbs worker --concurrency 4 --loglevel DEBUG`.
    The default concurrency is one process per core: rendering is CPU-bound.
    """
    settings = load_settings()
    app = build_worker_app(settings)
    app.worker_main(["worker", "--queues", "s3thumbs", "--loglevel", "INFO", *celery_args])


def build_worker_app(settings: Settings) -> Any:
    """The Celery app with both tasks registered, and logging as the settings ask."""
    from celery import signals

    from s3thumbs import celery_app, deadletters, tasks

    app = celery_app.create_app(settings)
    tasks.register(app, settings, tasks.storage_per_process(settings.s3_endpoint_url))
    deadletters.install(app)

    if settings.log_format == "json":
        def json_logs(logger: logging.Logger, **_: Any) -> None:
            for handler in logger.handlers:
                handler.setFormatter(make_formatter("json"))

        signals.after_setup_logger.connect(json_logs, weak=False)
        signals.after_setup_task_logger.connect(json_logs, weak=False)
    return app


@main.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.argument("key")
def thumbnail(bucket: str, key: str) -> None:
    """Render one object now, in this process (no broker), and print the keys written."""
    from s3thumbs import tasks
    from s3thumbs.storage import Storage, make_client
    from s3thumbs.thumbnailer import make_thumbnails

    settings = load_settings()
    configure_logging(settings.log_format, logging.WARNING)
    storage = Storage(make_client(settings.s3_endpoint_url))
    try:
        outcome = make_thumbnails(storage, tasks.job_from(settings), bucket, key)
    except PermanentFailure as e:
        raise click.ClickException(f"s3://{bucket}/{key}: {e}") from e
    if outcome.status in ("gone", "ignored"):
        raise click.ClickException(f"s3://{bucket}/{key}: {outcome.status}, nothing written")
    for thumb in outcome.thumbnails:
        suffix = "" if outcome.status == "written" else f"  ({outcome.status})"
        click.echo(f"s3://{settings.layout.output_bucket(bucket)}/{thumb.key}  "
                   f"{thumb.width}x{thumb.height}  {thumb.bytes} bytes{suffix}")


@main.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.option("--prefix", default="", help="Only sources under this prefix.")
@click.option("--dry-run", is_flag=True, help="Count what would be enqueued; enqueue nothing.")
def backfill(bucket: str, prefix: str, dry_run: bool) -> None:
    """Enqueue a task for every image in BUCKET that lacks one of its thumbnails."""
    from s3thumbs import backfill as backfilling
    from s3thumbs import celery_app
    from s3thumbs.storage import Storage, make_client

    settings = load_settings()
    configure_logging(settings.log_format, logging.WARNING)
    if not settings.bucket_allowed(bucket):
        raise click.ClickException(f"bucket {bucket!r} is not in S3THUMBS_BUCKETS")
    storage = Storage(make_client(settings.s3_endpoint_url))
    app = celery_app.create_app(settings, results=False)
    plan = backfilling.Plan(storage, settings.layout, settings.sizes)
    publish = None if dry_run else (lambda events: celery_app.publish(app, events))
    summary = backfilling.run(plan, bucket, prefix, publish, progress=_progress)
    verb = "would enqueue" if dry_run else "enqueued"
    click.echo(f"{summary.sources} images, {summary.complete} with every thumbnail, {verb} {summary.missing}")


def _progress(items: Iterator[Any]) -> Iterator[Any]:
    from tqdm import tqdm

    return iter(tqdm(items, desc="sources", unit=" obj", file=sys.stderr, disable=None))


@main.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.option("--arn", required=True,
              help="SNS topic, SQS queue or MinIO target, e.g. arn:minio:sqs::S3THUMBS:webhook.")
@click.option("--prefix", default=None, help="Only keys under this prefix (S3 filters allow one prefix).")
@click.option("--suffix", default=None, help="Only keys ending with this suffix.")
def notify(bucket: str, arn: str, prefix: str | None, suffix: str | None) -> None:
    """Send BUCKET's put and delete notifications to ARN, keeping its other rules.

    Uses PutBucketNotificationConfiguration, which MinIO and AWS both accept. Running it again
    replaces s3thumbs' own rule rather than adding a second one. Thumbnails written under the
    output prefix are ignored by the receiver and the worker, so a whole-bucket rule is safe.
    """
    from s3thumbs import notify as notifying
    from s3thumbs.storage import make_client

    settings = load_settings()
    try:
        notifying.section_for(arn)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--arn") from e
    config = notifying.apply(make_client(settings.s3_endpoint_url), bucket, arn, prefix, suffix)
    rules = sum(len(value) for value in config.values() if isinstance(value, list))
    filters = [f"{name}={value!r}" for name, value in (("prefix", prefix), ("suffix", suffix)) if value]
    scope = " ".join(filters)
    click.echo(f"s3://{bucket}: put and delete events {scope or 'for every key'} now go to {arn} "
               f"({rules} rule(s) in the bucket's configuration)")


@main.group("dead-letters", context_settings=CONTEXT, invoke_without_command=True)
@click.pass_context
def dead_letters(context: click.Context) -> None:
    """List or re-drive the tasks that failed for good (bad input, exhausted retries, time limits).

    Workers leave a record for each on the broker's `s3thumbs.dead` queue, which no worker
    consumes. Without a subcommand, lists them.
    """
    if context.invoked_subcommand is None:
        context.invoke(list_dead_letters)


@dead_letters.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
def list_dead_letters(as_json: bool) -> None:
    """Show every dead letter, oldest first; they stay on the queue."""
    import json

    from s3thumbs import celery_app, deadletters

    app = celery_app.create_app(load_settings(), results=False)
    letters = deadletters.list_letters(app)
    for letter in letters:
        if as_json:
            click.echo(json.dumps(letter.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"{letter.failed_at}  {letter.task}  s3://{letter.bucket}/{letter.key}  "
                       f"{letter.exception}: {letter.reason}  (retries {letter.retries}, task {letter.task_id})")
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead_letters.command("redrive", context_settings=CONTEXT)
@click.option("--task-id", "task_ids", multiple=True, help="Only this task (repeatable); default: all.")
@click.option("--key-prefix", default="", help="Only sources whose key starts with this.")
def redrive_dead_letters(task_ids: tuple[str, ...], key_prefix: str) -> None:
    """Publish the dead letters' tasks again (e.g. once the source is fixed) and remove their records."""
    from s3thumbs import celery_app, deadletters

    app = celery_app.create_app(load_settings(), results=False)

    def chosen(letter: deadletters.DeadLetter) -> bool:
        return (not task_ids or letter.task_id in task_ids) and letter.key.startswith(key_prefix)

    done = deadletters.redrive(app, lambda letter: deadletters.republish(app, letter), chosen)
    for letter in done:
        click.echo(f"re-driven {letter.task} s3://{letter.bucket}/{letter.key}")
    click.echo(f"{len(done)} dead letter(s) re-driven", err=True)


@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for the S3 endpoint and receiver.")
@click.option("--s3-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the embedded S3 endpoint (0: any free port).")
@click.option("--receiver-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the receiver (0: any free port).")
def dev(host: str, s3_port: int, receiver_port: int) -> None:
    """Run the whole pipeline here, with no outside server: upload, and thumbnails appear.

    Starts an embedded S3 endpoint (moto) with the bucket `uploads`, whose notifications reach the
    receiver through SNS exactly as on AWS, the receiver, and a worker on an in-process broker
    (or on S3THUMBS_BROKER_URL when set). Prints the endpoint, credentials and an upload command.
    Ctrl-C stops everything.
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
        app = build_worker_app(settings)

        def run_worker() -> None:
            app.Worker(pool="threads", concurrency=os.cpu_count() or 2, queues=["s3thumbs"],
                       loglevel="INFO", without_mingle=True, without_gossip=True,
                       without_heartbeat=True, hostname=f"s3thumbs-dev@{socket.gethostname()}").start()

        def show(line: str) -> None:
            click.echo(line)
            sys.stdout.flush()

        session = boto3.session.Session()
        devmode.serve(settings, build_receiver(settings), run_worker,
                      session.client("s3", endpoint_url=s3_url), session.client("sns", endpoint_url=s3_url),
                      s3_url, show, host, receiver_port)
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
