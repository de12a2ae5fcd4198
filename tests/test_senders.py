"""Ceph RGW and SeaweedFS notifications: raw keys, the filer's event kinds, and its noise skipped."""

from __future__ import annotations

from urllib.parse import unquote_plus

import pytest
from starlette.testclient import TestClient

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import Notification
from s3thumbs.notifications import parse_body, parse_document
from s3thumbs.receiver import create_app
from tests.support.notifications import ceph_records, json_body, s3_notification, s3_record, seaweedfs_event
from tests.support.publishing import Recorded

TOKEN = "store-token"


def parsed(document) -> Notification:
    result = parse_document(document)
    assert isinstance(result, Notification)
    return result


@pytest.mark.parametrize("key", ["a b+c é.jpg", "100%25 sure.jpg", "plus+sign.jpg", "dir/x%2Fy.jpg", "写真 2026.png"])
def test_ceph_keys_are_taken_as_they_come_while_aws_keys_are_decoded(key):
    [ceph] = parsed(ceph_records(key=key)).events
    [aws] = parsed(s3_notification(s3_record(key=key, encoded=False))).events

    assert ceph.key == key
    assert aws.key == unquote_plus(key)  # the same characters from AWS or MinIO mean something else


def test_a_ceph_delete_is_a_removal_whatever_size_and_etag_it_carries():
    [event] = parsed(ceph_records(event="ObjectRemoved:Delete")).events

    assert (event.action, event.etag, event.size) == ("removed", None, None)


@pytest.mark.parametrize(
    ("event_type", "action"), [("create", "created"), ("update", "created"), ("delete", "removed")]
)
def test_seaweedfs_creates_and_overwrites_are_created_and_deletes_removed(event_type, action):
    [event] = parsed(seaweedfs_event(event_type)).events

    assert (event.action, event.bucket, event.key) == (action, "photos", "a b+c é.jpg")
    if action == "created":
        assert (event.etag, event.size, event.content_type) == ("ee0945e1d9c818058680b98955391717", 22, "image/jpeg")


def test_a_seaweedfs_rename_removes_the_old_key_and_creates_the_new_one():
    result = parsed(seaweedfs_event("rename", "/buckets/photos/old/a.jpg", new_path="/buckets/photos/new/b+c.jpg"))

    assert [(e.action, e.bucket, e.key) for e in result.events] == [
        ("removed", "photos", "old/a.jpg"),
        ("created", "photos", "new/b+c.jpg"),
    ]


@pytest.mark.parametrize(
    ("document", "word"),
    [
        (seaweedfs_event(path="/buckets/photos", directory=True), "not an object"),
        (seaweedfs_event(path="/buckets/photos/album", directory=True), "directory"),
        (seaweedfs_event("delete", "/buckets/photos/album", directory=True), "directory"),
        # Multipart internals claim the upload's image type: skipped all the same.
        (seaweedfs_event(path="/buckets/photos/.uploads/abc_def/0001_x.part"), "multipart"),
        (seaweedfs_event("delete", "/buckets/photos/.uploads/abc_def"), "multipart"),
        (seaweedfs_event(path="/buckets/.system/owners/admin/photos"), "filer's own"),
        (seaweedfs_event(path="/topics/.system/log/2026"), "not an object"),
    ],
)
def test_seaweedfs_noise_is_skipped_with_its_reason(document, word):
    result = parsed(document)

    assert result.events == ()
    [skipped] = result.ignored
    assert word in skipped.reason and skipped.code == "store_internal"


def test_a_garbled_seaweedfs_etag_leaves_the_event_without_one():
    document = seaweedfs_event()
    document["message"]["new_entry"]["extended"]["Seaweed-X-Amz-ETag"] = "not base64!"

    [event] = parsed(document).events

    assert event.etag is None


@pytest.mark.parametrize(
    "document",
    [
        {"event_type": "create", "key": "/buckets/photos/a.jpg", "message": "not an object"},
        {"event_type": "truncate", "key": "/buckets/photos/a.jpg", "message": {}},
        {"event_type": "create", "key": 42, "message": {}},
        {"event_type": "create", "key": "/buckets/photos/a.jpg", "message": {"new_entry": []}},
        {"event_type": "rename", "key": "/buckets/photos/a.jpg", "message": {"old_entry": {}}},
    ],
)
def test_what_is_no_seaweedfs_event_is_refused(document):
    with pytest.raises(InvalidEvent):
        parse_document(document)


def test_the_receiver_takes_each_store_with_the_credentials_it_can_send():
    published = Recorded()
    client = TestClient(create_app(published, token=TOKEN))
    basic = client.post("/events", content=json_body(ceph_records(key="a b+c.jpg")), auth=("s3thumbs", TOKEN))
    bearer = client.post(
        "/events", json=seaweedfs_event(path="/buckets/photos/x y.jpg"), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    noise = client.post(
        "/events",
        json=seaweedfs_event(path="/buckets/photos/.uploads/u/0001.part"),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert (basic.status_code, bearer.status_code, noise.status_code) == (202, 202, 200)
    assert [(e.bucket, e.key) for e in published] == [("photos", "a b+c.jpg"), ("photos", "x y.jpg")]
    assert noise.json()["skipped"][0]["code"] == "store_internal"


def test_a_ceph_body_inside_sns_keeps_its_raw_key():
    from tests.support.notifications import sns_notification

    wrapped = sns_notification(json_body(ceph_records(key="a+b.jpg")).decode())

    [event] = parsed(wrapped).events
    assert event.key == "a+b.jpg"
    assert parse_body(json_body(wrapped)).kind == "sns/ceph"
