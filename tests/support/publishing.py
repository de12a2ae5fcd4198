"""Tasks on and off the broker: publishing as s3thumbs does, the list-backed publish of in-process tests,
and reading task results."""

from __future__ import annotations

import time
from collections.abc import Sequence

from celery import Celery
from celery.result import AsyncResult

from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_id
from s3thumbs.publisher import BrokerPublisher


class Recorded(list[ObjectEvent]):
    """A publish that keeps every event it is given, in order: the seam for in-process receiver tests."""

    def __call__(self, events: Sequence[ObjectEvent]) -> None:
        self.extend(events)

    def close(self) -> None:
        """Nothing to drop."""


def publish_events(broker_url: str, events: Sequence[ObjectEvent]) -> list[str]:
    """Publish one task per event as every s3thumbs publisher does (``BrokerPublisher``); return their ids.

    A task's id comes from its event: to deliver the same object twice as two tasks, give the events
    different ``sequencer`` values.
    """
    publish = BrokerPublisher.from_settings(Settings(broker_url=broker_url, result_backend=None))
    try:
        publish(events)
    finally:
        publish.close()
    return [task_id(event) for event in events]


class Results:
    """Reads task states from a result backend."""

    def __init__(self, backend_url: str) -> None:
        self.app = Celery("s3thumbs-tests", broker="memory://", backend=backend_url, set_as_current=False)
        self.app.conf.update(accept_content=["json"], result_accept_content=["json"])

    def of(self, task_id: str) -> AsyncResult:
        return AsyncResult(task_id, app=self.app)

    def wait_ready(self, task_id: str, timeout: float) -> AsyncResult:
        """The result once the task succeeded or failed for good; fails after ``timeout`` seconds."""
        result = self.of(task_id)
        deadline = time.monotonic() + timeout
        while result.state not in ("SUCCESS", "FAILURE"):
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} still {result.state} after {timeout} s")
            time.sleep(0.1)
        return result

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
