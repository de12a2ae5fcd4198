"""One-shot commands: render one object, backfill, wire notifications, dead letters."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import urlsplit

import click
from tqdm import tqdm

from s3thumbs import backfill as backfilling
from s3thumbs import celery_app, deadletters, topics
from s3thumbs import notify as notifying
from s3thumbs.cli import wiring
from s3thumbs.cli.main import CONTEXT
from s3thumbs.errors import PermanentFailure
from s3thumbs.logs import configure_logging
from s3thumbs.storage import make_client
from s3thumbs.thumbnailer import Job, make_thumbnails

T = TypeVar("T")


@click.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.argument("key")
def thumbnail(bucket: str, key: str) -> None:
    """Render one object now, in this process (no broker), and print the keys written."""
    settings = wiring.load_settings()
    configure_logging(settings.log_format, logging.WARNING)
    try:
        outcome = make_thumbnails(wiring.storage(settings), Job.from_settings(settings), bucket, key)
    except PermanentFailure as e:
        raise click.ClickException(f"s3://{bucket}/{key}: {e}") from e
    if outcome.status in ("gone", "ignored"):
        raise click.ClickException(f"s3://{bucket}/{key}: {outcome.status}, nothing written")
    for thumb in outcome.thumbnails:
        suffix = "" if outcome.status == "written" else f"  ({outcome.status})"
        click.echo(
            f"s3://{settings.layout.output_bucket(bucket)}/{thumb.key}  "
            f"{thumb.width}x{thumb.height}  {thumb.bytes} bytes{suffix}"
        )


@click.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.option("--prefix", default="", help="Only sources under this prefix.")
@click.option("--dry-run", is_flag=True, help="Count what would be enqueued; enqueue nothing.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also enqueue sources that failed for good (marked in the result backend's Redis).",
)
def backfill(bucket: str, prefix: str, dry_run: bool, retry_failed: bool) -> None:
    """Enqueue every image in BUCKET whose thumbnails are missing or stale.

    A source is current when every size exists and its thumbnails carry the source's eTag and the
    current settings hash; anything else is enqueued. Sources that failed for good are left alone
    until they change, unless --retry-failed. Prints a summary line at the end.
    """
    settings = wiring.load_settings()
    configure_logging(settings.log_format, logging.WARNING)
    if not settings.bucket_allowed(bucket):
        raise click.ClickException(f"bucket {bucket!r} is not in S3THUMBS_BUCKETS")
    plan = wiring.backfill_plan(settings, wiring.storage(settings))
    publish = None if dry_run else wiring.publisher(settings)
    try:
        summary = backfilling.run(plan, bucket, prefix, publish, retry_failed=retry_failed, progress=_progress)
    finally:
        if publish is not None:
            publish.close()
    click.echo(summary.line(dry_run))


def _progress(items: Iterable[T], total: int | None, description: str) -> Iterable[T]:
    shown: Iterable[T] = tqdm(items, total=total, desc=description, unit=" obj", file=sys.stderr, disable=None)
    return shown


@click.command(context_settings=CONTEXT)
@click.argument("bucket")
@click.option("--arn", default=None, help="SNS topic, SQS queue or MinIO target, e.g. arn:minio:sqs::S3THUMBS:webhook.")
@click.option(
    "--push-endpoint",
    default=None,
    metavar="URL",
    help="Ceph RGW: create a topic that pushes to the receiver at URL, e.g. http://s3thumbs:TOKEN@host:8080/events, "
    "and send the bucket's events to it.",
)
@click.option("--topic", default=topics.DEFAULT_TOPIC, show_default=True, help="Ceph RGW: the topic's name.")
@click.option(
    "--persistent/--not-persistent",
    default=False,
    show_default=True,
    help="Ceph RGW: queue events and retry them (on Ceph 16.2 the queue can stop after an outage; see README).",
)
@click.option("--prefix", default=None, help="Only keys under this prefix (S3 filters allow one prefix).")
@click.option("--suffix", default=None, help="Only keys ending with this suffix.")
def notify(
    bucket: str,
    arn: str | None,
    push_endpoint: str | None,
    topic: str,
    persistent: bool,
    prefix: str | None,
    suffix: str | None,
) -> None:
    """Send BUCKET's put and delete notifications to ARN (or to a Ceph RGW topic), keeping its other rules.

    Uses PutBucketNotificationConfiguration, which AWS, MinIO and Ceph RGW accept. Running it again
    replaces s3thumbs' own rule rather than adding a second one. Thumbnails written under the
    output prefix are ignored by the receiver and the worker, so a whole-bucket rule is safe.

    With --push-endpoint (Ceph RGW), a topic pushing to the receiver is created first, through RGW's
    SNS API at S3THUMBS_S3_ENDPOINT_URL. RGW sends the URL's credentials as HTTP Basic, and creates
    such a topic only over https, or over http when it has rgw_trust_forwarded_https = true (this
    command then sends X-Forwarded-Proto: https).
    """
    settings = wiring.load_settings()
    if (arn is None) == (push_endpoint is None):
        raise click.UsageError("give exactly one of --arn and --push-endpoint")
    if push_endpoint is not None:
        arn = _ceph_topic(settings.s3_endpoint_url, push_endpoint, topic, persistent)
    assert arn is not None
    try:
        notifying.section_for(arn)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--arn") from e
    config = notifying.apply(make_client(settings.s3_endpoint_url), bucket, arn, prefix, suffix)
    rules = sum(len(value) for value in config.values() if isinstance(value, list))
    filters = [f"{name}={value!r}" for name, value in (("prefix", prefix), ("suffix", suffix)) if value]
    scope = " ".join(filters)
    click.echo(
        f"s3://{bucket}: put and delete events {scope or 'for every key'} now go to {arn} "
        f"({rules} rule(s) in the bucket's configuration)"
    )


def _ceph_topic(endpoint_url: str | None, push_endpoint: str, name: str, persistent: bool) -> str:
    """Create the RGW topic that pushes to ``push_endpoint``; its ARN."""
    if endpoint_url is None:
        raise click.UsageError("--push-endpoint needs S3THUMBS_S3_ENDPOINT_URL: the Ceph RGW to make the topic on")
    if urlsplit(push_endpoint).scheme not in ("http", "https"):
        raise click.BadParameter("an http:// or https:// URL of the receiver's /events", param_hint="--push-endpoint")
    sns = topics.make_client(endpoint_url)
    if urlsplit(endpoint_url).scheme == "http" and topics.has_credentials(push_endpoint):
        topics.forward_https(sns)
    try:
        return topics.create_topic(sns, push_endpoint, name=name, persistent=persistent)
    except topics.TopicRefused as e:
        raise click.ClickException(str(e)) from e


@click.group("dead-letters", context_settings=CONTEXT, invoke_without_command=True)
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
    app = celery_app.create_app(wiring.load_settings(), results=False)
    letters = deadletters.list_letters(app)
    for letter in letters:
        if as_json:
            click.echo(json.dumps(letter.to_dict(), ensure_ascii=False))
        else:
            click.echo(
                f"{letter.failed_at}  {letter.task}  s3://{letter.bucket}/{letter.key}  "
                f"{letter.exception}: {letter.reason}  (retries {letter.retries}, task {letter.task_id})"
            )
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead_letters.command("redrive", context_settings=CONTEXT)
@click.option("--task-id", "task_ids", multiple=True, help="Only this task (repeatable); default: all.")
@click.option("--key-prefix", default="", help="Only sources whose key starts with this.")
def redrive_dead_letters(task_ids: tuple[str, ...], key_prefix: str) -> None:
    """Publish the dead letters' tasks again (e.g. once the source is fixed) and remove their records."""
    settings = wiring.load_settings()
    app = celery_app.create_app(settings, results=False)
    publish = wiring.publisher(settings)

    def chosen(letter: deadletters.DeadLetter) -> bool:
        return (not task_ids or letter.task_id in task_ids) and letter.key.startswith(key_prefix)

    try:
        done = deadletters.redrive(app, publish, chosen)
    finally:
        publish.close()
    for letter in done:
        click.echo(f"re-driven {letter.task} s3://{letter.bucket}/{letter.key}")
    click.echo(f"{len(done)} dead letter(s) re-driven", err=True)
