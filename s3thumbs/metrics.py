"""Prometheus metrics: the receiver's on its own ``/metrics``, the worker's on S3THUMBS_METRICS_PORT.

The worker renders in prefork pool processes, so its metrics use prometheus-client's multiprocess
mode: PROMETHEUS_MULTIPROC_DIR must be set before this module is first imported (prometheus-client
reads it at import; the ``s3thumbs worker`` command sets it first), and the parent serves the sum
of every process's files. Queue depth is asked of the broker at each scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from amqp.exceptions import ChannelError
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

QUEUE = "s3thumbs"
logger = logging.getLogger(__name__)

# Receiver
EVENTS_RECEIVED = Counter("s3thumbs_events_received", "Object events found in notification bodies")
EVENTS_PUBLISHED = Counter("s3thumbs_events_published", "Events published as tasks")
EVENTS_SKIPPED = Counter("s3thumbs_events_skipped", "Events that needed no task, by reason", ["reason"])
PUBLISH_FAILURES = Counter("s3thumbs_publish_failures", "Requests answered 503: the broker did not take the tasks")
PUBLISH_SECONDS = Histogram("s3thumbs_publish_seconds", "Time from a request's events being ready to their 2xx",
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

# Worker
TASKS = Counter("s3thumbs_tasks", "Tasks finished, by task and outcome", ["task", "outcome"])
TASK_SECONDS = Histogram("s3thumbs_task_seconds", "Wall time of a task that wrote thumbnails",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
BYTES_READ = Counter("s3thumbs_source_bytes_read", "Bytes of source objects read")
BYTES_WRITTEN = Counter("s3thumbs_thumbnail_bytes_written", "Bytes of thumbnails written")


def receiver_metrics() -> bytes:
    """The receiver's metrics in Prometheus' text format (one process)."""
    return generate_latest()


class QueueDepth(Collector):
    """``s3thumbs_queue_depth``: messages waiting in the queue, asked of the broker at each scrape."""

    def __init__(self, depth: Callable[[], int | None]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        value = self.depth()
        if value is not None:
            yield GaugeMetricFamily("s3thumbs_queue_depth", "Tasks waiting in the s3thumbs queue", value=value)


def broker_queue_depth(app: Any) -> Callable[[], int | None]:
    """Ask the broker how many messages wait in the queue (Redis list length or RabbitMQ count)."""

    def depth() -> int | None:
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                _, count, _ = connection.default_channel.queue_declare(QUEUE, passive=True)
                return int(count)
        except ChannelError as e:
            # Not declared yet, or (Redis) an empty list, which Redis does not keep: nothing waits.
            return 0 if str(getattr(e, "reply_code", "")) == "404" else None
        except Exception:  # a scrape must answer even while the broker is away
            return None

    return depth


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
