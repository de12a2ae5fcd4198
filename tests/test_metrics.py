"""The receiver's Prometheus metrics move with what it receives, publishes and skips."""

from __future__ import annotations

from starlette.testclient import TestClient

from s3thumbs.receiver import create_app
from tests.support.metrics import value
from tests.support.notifications import minio_webhook
from tests.support.publishing import Recorded


def test_the_receiver_counts_what_it_received_published_and_skipped():
    published = Recorded()
    with TestClient(create_app(published)) as http:
        before = http.get("/metrics").text
        for key in ("cat.jpg", "thumbnails/128x128/cat.jpg"):
            assert http.post("/events", json=minio_webhook("photos", key, "e1")).status_code in (200, 202)
        after = http.get("/metrics")

    assert after.headers["content-type"].startswith("text/plain")
    wanted = [
        ("s3thumbs_events_received_total", {}),
        ("s3thumbs_events_published_total", {}),
        ("s3thumbs_events_skipped_total", {"reason": "a thumbnail (output prefix or bucket)"}),
        ("s3thumbs_publish_seconds_count", {}),
    ]
    moved = [value(after.text, name, **labels) - value(before, name, **labels) for name, labels in wanted]
    assert moved == [2, 1, 1, 1]
    assert [e.key for e in published] == ["cat.jpg"]
