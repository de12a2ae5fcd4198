"""Prometheus metrics: the receiver's on its own ``/metrics``, the worker's on S3THUMBS_METRICS_PORT.

Each process builds its metrics explicitly. The receiver's live in a registry of its app's own. The
worker renders in prefork pool processes, so its metrics are kept in prometheus-client's
multiprocess mode: ``multiprocess_mode(folder)`` switches this process to it and must come before
``WorkerMetrics`` is built (``s3thumbs worker`` does both, in that order); the parent then serves the
sum of every process's files, plus the queue depth, asked of the broker at each scrape.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from s3thumbs.events import SKIP_CODES

logger = logging.getLogger(__name__)

TEXT_FORMAT = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ReceiverMetrics:
    """The receiver's counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("s3thumbs_events_received", "Object events found in notification bodies", registry=r)
        self.published = Counter("s3thumbs_events_published", "Events published as tasks", registry=r)
        # Labelled by a fixed code (events.SKIP_CODES), never by anything a sender wrote.
        self.skipped = Counter(
            "s3thumbs_events_skipped", "Events that needed no task, by reason", ["reason"], registry=r
        )
        for code in SKIP_CODES:
            self.skipped.labels(code)
        self.publish_failures = Counter(
            "s3thumbs_publish_failures", "Requests answered 503: the broker did not take the tasks", registry=r
        )
        self.publish_seconds = Histogram(
            "s3thumbs_publish_seconds",
            "Time from a request's events being ready to their 2xx",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )

    def text(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)


class WorkerMetrics:
    """The worker's counters. In multiprocess mode every process writes its own files; the parent
    sums them (``serve_worker_metrics``). Outside it (``s3thumbs dev``) they are kept, unserved."""

    def __init__(self) -> None:
        self.tasks = Counter(
            "s3thumbs_tasks", "Tasks finished, by task and outcome", ["task", "outcome"], registry=None
        )
        self.task_seconds = Histogram(
            "s3thumbs_task_seconds", "Wall time of a task that wrote thumbnails", buckets=TASK_BUCKETS, registry=None
        )
        self.bytes_read = Counter("s3thumbs_source_bytes_read", "Bytes of source objects read", registry=None)
        self.bytes_written = Counter("s3thumbs_thumbnail_bytes_written", "Bytes of thumbnails written", registry=None)


def multiprocess_mode(folder: str) -> None:
    """Keep this process's (and its children's) worker metrics in files under ``folder``."""
    os.environ[MULTIPROC_ENV] = folder
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class QueueDepth(Collector):
    """``s3thumbs_queue_depth``: messages waiting in the queue, asked of the broker at each scrape."""

    def __init__(self, depth: Callable[[], int | None]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        value = self.depth()
        if value is not None:
            yield GaugeMetricFamily("s3thumbs_queue_depth", "Tasks waiting in the s3thumbs queue", value=value)


def serve_worker_metrics(port: int, depth: Callable[[], int | None]) -> None:
    """Serve the sum of every pool process's metrics, plus the queue depth, on ``port``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(QueueDepth(depth))
    try:
        start_http_server(port, registry=registry)
    except OSError as e:  # a second worker on this host: it works on, unmeasured, rather than not at all
        logger.warning("metrics not served: port %d: %s (set S3THUMBS_METRICS_PORT)", port, e)
        return
    logger.info("metrics on http://0.0.0.0:%d/metrics", port)
