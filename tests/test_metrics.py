"""The receiver's Prometheus metrics move with what it receives, publishes and skips."""

from __future__ import annotations

from starlette.testclient import TestClient

from s3thumbs.events import SKIP_CODES
from s3thumbs.receiver import create_app
from tests.support.metrics import samples, value
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
        ("s3thumbs_events_skipped_total", {"reason": "own_output"}),
        ("s3thumbs_publish_seconds_count", {}),
    ]
    moved = [value(after.text, name, **labels) - value(before, name, **labels) for name, labels in wanted]
    assert moved == [2, 1, 1, 1]
    assert [e.key for e in published] == ["cat.jpg"]


def test_what_senders_write_never_becomes_a_label_value():
    # Each event name a sender makes up is skipped ("does not change content"): one label value for all.
    with TestClient(create_app(Recorded())) as http:
        for n in range(200):
            event = f"s3:ObjectCreated:Forged{n}"
            response = http.post("/events", json=minio_webhook("photos", f"k{n}.jpg", event=event))
            assert response.json()["skipped"][0]["reason"] == f"event {event} does not change content"
        text = http.get("/metrics").text

    reasons = {dict(labels)["reason"] for name, labels in samples(text) if name == "s3thumbs_events_skipped_total"}
    assert reasons <= set(SKIP_CODES)
    assert value(text, "s3thumbs_events_skipped_total", reason="not_content") == 200
