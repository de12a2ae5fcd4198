"""The composition root: every long-lived object s3thumbs runs with is built here, from Settings.

Commands call these builders; nothing else constructs clients, apps or stores. Worker-side
objects that must not cross a fork (boto3 clients, Redis connections) are built lazily, once per
process (``per_process``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import click
import httpx
from celery import Celery, signals
from starlette.applications import Starlette

from s3thumbs import celery_app, completions, deadletters, resizing, tasks
from s3thumbs.backfill import Plan, reconcile
from s3thumbs.completions import Completions
from s3thumbs.config import Settings
from s3thumbs.errors import ConfigError
from s3thumbs.failures import FailureMarkers
from s3thumbs.gallery import Gallery
from s3thumbs.links import CACHE_CONTROL, LIFETIME, Links, Presign
from s3thumbs.logs import celery_logs, configure_logging
from s3thumbs.messages import DELIVER_TASK, TASK_NAMES
from s3thumbs.metrics import WorkerMetrics
from s3thumbs.outcomes import Outcomes
from s3thumbs.publisher import BrokerPublisher
from s3thumbs.receiver import create_app
from s3thumbs.redisbackend import RECEIVER_TIMEOUT_SECONDS, StatusStore
from s3thumbs.rules import Rules
from s3thumbs.sns import Verifier
from s3thumbs.status import Statuses
from s3thumbs.storage import Storage, make_client
from s3thumbs.thumbnailer import Job

logger = logging.getLogger("s3thumbs")
T = TypeVar("T")
# Seconds the receiver waits for SNS when it confirms a subscription.
CONFIRM_TIMEOUT = 10


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, or exit with the one line that names the bad variable."""
    try:
        return Settings.from_env(os.environ if environ is None else environ)
    except ConfigError as e:
        raise click.ClickException(f"invalid configuration: {e}") from e


def per_process(make: Callable[[], T]) -> Callable[[], T]:
    """``make()``, built lazily once per process: no client or connection crosses a fork."""
    cache: dict[int, T] = {}

    def get() -> T:
        pid = os.getpid()
        if pid not in cache:
            cache.clear()
            cache[pid] = make()
        return cache[pid]

    return get


def storage(settings: Settings) -> Storage:
    """S3 through boto3, at the configured endpoint."""
    return Storage(make_client(settings.s3_endpoint_url))


def publisher(settings: Settings) -> BrokerPublisher:
    """The one way tasks get on the broker."""
    return BrokerPublisher.from_settings(settings)


def backfill_plan(settings: Settings, store: Storage) -> Plan:
    """What backfill and reconciliation compare against: layout, each key's sizes and settings hash,
    failure markers."""
    return Plan(store, Job.from_settings(settings), FailureMarkers.from_backend(settings.result_backend))


def presigner(settings: Settings) -> Presign:
    """The gallery's links: presigned GETs, short-lived, that browsers may cache (see ``links``)."""
    # Presigning is local (no request); the URLs must name an endpoint the browser can reach.
    signer = make_client(settings.public_s3_url or settings.s3_endpoint_url)

    def presign(bucket: str, key: str) -> str:
        params = {"Bucket": bucket, "Key": key, "ResponseCacheControl": CACHE_CONTROL}
        url: str = signer.generate_presigned_url("get_object", Params=params, ExpiresIn=LIFETIME)
        return url

    return presign


def receiver_app(settings: Settings, statuses: Statuses | None = None, *, loopback: bool = False) -> Starlette:
    """The receiver, publishing to the configured broker; statuses in the result backend's Redis
    unless ``statuses`` is given (``s3thumbs dev`` keeps them in its one process).

    The gallery is served behind S3THUMBS_GALLERY_TOKEN; without it only on a ``loopback`` bind with no
    S3THUMBS_AUTH_TOKEN either (then to this machine's host names only), else not at all (404).
    """
    publish = publisher(settings)
    readiness = celery_app.create_app(settings, results=False)
    verifier = Verifier(topics=settings.sns_topics) if settings.sns_verify else None
    if settings.sns_verify and settings.sns_topics is None:
        logger.warning(
            "S3THUMBS_SNS_VERIFY=1 without S3THUMBS_SNS_TOPICS: SNS messages signed for any "
            "topic, anyone's, are accepted"
        )

    def confirm(url: str) -> None:
        httpx.get(url, timeout=CONFIRM_TIMEOUT).raise_for_status()

    store = (
        statuses
        if statuses is not None
        else StatusStore.from_backend(settings.result_backend, timeout=RECEIVER_TIMEOUT_SECONDS)
    )
    gallery = None
    if settings.gallery_on(loopback):
        gallery = Gallery(store, Links(presigner(settings)), settings.layout, settings.buckets)
    return create_app(
        publish,
        token=settings.auth_token,
        gallery_token=settings.gallery_token,
        rules=Rules.from_settings(settings),
        max_body_bytes=settings.max_body_bytes,
        ready=lambda: celery_app.broker_ready(readiness),
        confirm=confirm,
        verify=verifier,
        sns_topics=settings.sns_topics,
        # RabbitMQ's confirms keep a batch waiting for milliseconds: a second thread sends the next
        # batch meanwhile. A Redis batch is one quick round trip; a second thread only adds contention.
        publisher_threads=2 if publish.confirms else 1,
        gallery=gallery,
        statuses=store,
    )


def receiver_from_env() -> Starlette:
    """Factory for uvicorn (``--workers`` > 1 imports the app by name in each process)."""
    settings = load_settings()
    configure_logging(settings.log_format)
    return receiver_app(settings)


def loopback_receiver_from_env() -> Starlette:
    """``receiver_from_env`` for a receiver bound to a loopback address."""
    settings = load_settings()
    configure_logging(settings.log_format)
    return receiver_app(settings, loopback=True)


def worker_app(settings: Settings, statuses: Statuses | None = None) -> Celery:
    """The worker's Celery app: its tasks, what happens after them, and logging as the settings ask.

    In ``s3thumbs worker`` call ``metrics.multiprocess_mode`` first, so that the pool processes'
    metrics are summed.
    """
    app = celery_app.create_app(settings)
    s3 = per_process(lambda: storage(settings))
    markers = per_process(lambda: FailureMarkers.from_backend(settings.result_backend))
    store: Callable[[], Statuses | None] = (
        (lambda: statuses)
        if statuses is not None
        else per_process(lambda: StatusStore.from_backend(settings.result_backend))
    )
    tasks.register(app, Job.from_settings(settings), s3, max_retries=settings.max_retries)

    def reconcile_buckets() -> None:
        publish = publisher(settings)
        try:
            reconcile(backfill_plan(settings, s3()), settings.buckets or (), publish)
        finally:
            publish.close()

    tasks.register_reconcile(app, reconcile_buckets, settings.reconcile_interval)
    names = set(TASK_NAMES.values())
    events = None
    if settings.events_url and settings.events_secret:
        completions.register(app, settings.events_url, settings.events_secret)
        events = Completions(app)
    Outcomes(names, s3, store, markers, WorkerMetrics(), events).install(app)
    deadletters.install(app, names | {DELIVER_TASK})
    # Each pool process loads its resizer (libvips: 9 MiB) before the first task, not during it.
    signals.worker_process_init.connect(_load_resizer, weak=False)
    celery_logs(settings.log_format)
    return app


def _load_resizer(**_: object) -> None:
    logger.info("pool process %d resizes with %s", os.getpid(), resizing.engine())
