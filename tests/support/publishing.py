"""Putting tasks on a broker from a test, and the list-backed publish seam of the receiver's unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.publisher import BrokerPublisher


class Recorded(list[ObjectEvent]):
    """A publish that keeps every event it is given, in order: the seam for in-process receiver tests."""

    def __call__(self, events: Sequence[ObjectEvent]) -> None:
        self.extend(events)

    def close(self) -> None:
        """Nothing to drop."""


def publish_events(broker_url: str, events: Sequence[ObjectEvent]) -> None:
    """Publish one task per event as every s3thumbs publisher does (``BrokerPublisher``)."""
    publish = BrokerPublisher.from_settings(Settings(broker_url=broker_url, result_backend=None))
    try:
        publish(events)
    finally:
        publish.close()
