"""The status store behind the gallery, on a private Redis."""

from __future__ import annotations

import time

import pytest
import redis

from s3thumbs.redisbackend import RECENT, RECORD_PREFIX, StatusStore
from s3thumbs.status import Record


@pytest.fixture
def status_store(redis_factory):
    server = redis_factory()
    client = redis.Redis.from_url(server.url_for(0))
    yield StatusStore(client)
    client.close()


def test_records_come_back_newest_first_with_every_field(status_store):
    thumbs = (
        {"key": "thumbnails/128x128/a.jpg", "width": 128, "height": 96, "bytes": 4000, "content_type": "image/jpeg"},
    )
    status_store.save(
        [Record("photos", "a.jpg", "written", etag="e1", size=1234, thumbnails=thumbs, ms=42.5, at=100.0)]
    )
    status_store.save([Record("photos", "b c+ü.png", "failed", reason="not an image", at=200.0)])

    first, second = status_store.recent()

    assert (first.key, first.status, first.reason) == ("b c+ü.png", "failed", "not an image")
    assert second == Record("photos", "a.jpg", "written", etag="e1", size=1234, thumbnails=thumbs, ms=42.5, at=100.0)


def test_a_new_status_replaces_the_old_one_and_moves_the_object_to_the_top(status_store):
    status_store.save([Record("photos", "a.jpg", "queued", at=1.0), Record("photos", "b.jpg", "queued", at=2.0)])
    status_store.save([Record("photos", "a.jpg", "written", at=3.0)])

    assert [(r.key, r.status) for r in status_store.recent()] == [("a.jpg", "written"), ("b.jpg", "queued")]


def test_only_the_newest_objects_are_kept(status_store):
    small = StatusStore(status_store.client, keep=5)
    small.save([Record("photos", f"{i}.jpg", "queued", at=float(i)) for i in range(12)])

    assert [r.key for r in small.recent(limit=100)] == [f"{i}.jpg" for i in range(11, 6, -1)]
    assert status_store.client.zcard(RECENT) == 5


def test_records_expire_and_leave_the_index(status_store):
    short = StatusStore(status_store.client, ttl=1)
    short.save([Record("photos", "a.jpg", "written")])
    assert 0 < status_store.client.ttl(RECORD_PREFIX + "photos/a.jpg") <= 1

    time.sleep(1.5)

    assert short.recent() == []
    assert status_store.client.zcard(RECENT) == 0


def test_a_store_on_the_result_backend_url(redis_factory):
    server = redis_factory()
    store = StatusStore.from_backend(server.url_for(3))

    assert store is not None
    store.save([Record("photos", "a.jpg", "queued")])
    with server.client(3) as client:
        assert client.exists(RECORD_PREFIX + "photos/a.jpg")


def test_queued_never_overwrites_what_a_worker_already_recorded(status_store):
    from s3thumbs.events import ObjectEvent
    from s3thumbs.status import queued_records

    status_store.save([Record("photos", "fast.jpg", "written", at=5.0)])

    status_store.save(
        queued_records(
            [
                ObjectEvent("created", "photos", "fast.jpg", "ObjectCreated:Put", 10, "e"),
                ObjectEvent("created", "photos", "new.jpg", "ObjectCreated:Put", 20, "f"),
                ObjectEvent("removed", "photos", "gone.jpg", "ObjectRemoved:Delete"),
            ]
        ),
        keep_existing=True,
    )

    statuses = {r.key: (r.status, r.size) for r in status_store.recent()}
    assert statuses == {"fast.jpg": ("written", None), "new.jpg": ("queued", 20)}
