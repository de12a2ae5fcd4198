"""Real S3-compatible stores: the facts about Ceph RGW 16.2 and SeaweedFS 4.48 that s3thumbs relies on.

Each test pins one fact the receiver's parsers and the set-up code will depend on, so an upgrade that
changes it turns a test red: objects with awkward keys round-trip, Ceph posts AWS-shaped records with
raw keys (and Basic auth from the push-endpoint URL, which needs TLS or a forwarded-https header), and
SeaweedFS's filer posts its own JSON with the raw path and a Bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.stores import CephRGW, SeaweedFS
from tests.support.webhooks import Received, WebhookRecorder

KEYS = ["photos/a b+c%20d é.jpg", "100% + 1/ünïcødé 雪.png", "plus+sign", "%2F/literal%percent"]
PART = 5 * 1024 * 1024
WAIT = 30.0


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["ceph_rgw", "seaweedfs"])
def store(request: pytest.FixtureRequest) -> CephRGW | SeaweedFS:
    """Each real store in turn."""
    value: CephRGW | SeaweedFS = request.getfixturevalue(request.param)
    return value


def test_the_stores_are_the_versions_the_reference_describes(ceph_rgw: CephRGW, seaweedfs: SeaweedFS) -> None:
    assert ceph_rgw.version.startswith("ceph version 16.2."), ceph_rgw.version
    assert " 4.48 " in seaweedfs.version, seaweedfs.version


def test_objects_with_awkward_keys_round_trip(store: CephRGW | SeaweedFS) -> None:
    s3 = store.client()
    bucket = store.create_bucket(unique_bucket("keys"))
    for number, key in enumerate(KEYS):
        s3.put_object(Bucket=bucket, Key=key, Body=f"body {number}".encode())
    for number, key in enumerate(KEYS):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"body {number}".encode()
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(KEYS)
    for key in KEYS:
        s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def multipart_upload(s3: Any, bucket: str, key: str, parts: list[bytes]) -> dict[str, Any]:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data)
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    result: dict[str, Any] = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
    )
    return result


def test_multipart_upload_of_an_awkward_key(store: CephRGW | SeaweedFS) -> None:
    s3 = store.client()
    bucket = store.create_bucket(unique_bucket("multipart"))
    key = "multi part/ü+%é 1.bin"
    parts = [b"a" * PART, b"tail"]
    completed = multipart_upload(s3, bucket, key, parts)
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"').endswith("-2")
    if isinstance(store, CephRGW):
        # radosgw 16.2 answers CompleteMultipartUpload with an empty <ETag/>: take the ETag from HEAD or the event.
        assert completed["ETag"] == ""
    else:
        assert completed["ETag"].strip('"').endswith("-2")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)


# --- Ceph RGW: S3 bucket notifications through SNS topics ---------------------------------------------------


def ceph_topic(rgw: CephRGW, push_endpoint: str, *, forwarded_https: bool = True) -> str:
    name = f"thumbs-{uuid.uuid4().hex[:12]}"
    attributes = {"push-endpoint": push_endpoint, "persistent": "false"}
    arn: str = rgw.sns_client(forwarded_https=forwarded_https).create_topic(Name=name, Attributes=attributes)[
        "TopicArn"
    ]
    assert arn == f"arn:aws:sns:default::{name}"
    return arn


def notify(rgw: CephRGW, bucket: str, topic_arn: str) -> None:
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    configuration = {"TopicConfigurations": [{"Id": "thumbs", "TopicArn": topic_arn, "Events": events}]}
    rgw.client().put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)


def records(received: list[Received]) -> list[dict[str, Any]]:
    """Every record posted, checking that each POST carries exactly one."""
    found = []
    for request in received:
        document = request.json()
        assert len(document["Records"]) == 1
        found.append(document["Records"][0])
    return found


def test_ceph_posts_records_with_raw_keys_and_basic_auth_from_the_endpoint_url(ceph_rgw: CephRGW) -> None:
    key = KEYS[0]
    with WebhookRecorder() as hook:
        topic = ceph_topic(ceph_rgw, hook.url("/ceph/events", userinfo="thumbs:s3cr%3At"))
        s3 = ceph_rgw.client()
        bucket = ceph_rgw.create_bucket(unique_bucket("ceph-notify"))
        notify(ceph_rgw, bucket, topic)
        assert hook.received == []  # no test event on configuration
        s3.put_object(Bucket=bucket, Key=key, Body=b"twenty-two bytes long.")
        # persistent=false: radosgw posts inside the S3 request, so the record is here when the PUT returns.
        assert len(hook.received) == 1
        multipart_upload(s3, bucket, "multi/ü é.bin", [b"x" * PART, b"y"])
        s3.delete_object(Bucket=bucket, Key=key)
        received = hook.wait_for(lambda got: len(got) >= 3, WAIT, "three records")

    expected_auth = "Basic " + base64.b64encode(b"thumbs:s3cr:t").decode()
    for request in received:
        assert (request.method, request.path) == ("POST", "/ceph/events")
        assert request.headers["authorization"] == expected_auth
        assert request.headers["content-type"] == "application/json"
        assert "user-agent" not in request.headers
    put, completed, deleted = records(received)
    for record in (put, completed, deleted):
        assert record["eventSource"] == "ceph:s3"
        assert record["eventVersion"] == "2.2"
        assert record["awsRegion"] == ""
        assert record["s3"]["bucket"]["name"] == bucket
        assert record["s3"]["configurationId"] == "thumbs"
    assert [r["eventName"] for r in (put, completed, deleted)] == [
        "ObjectCreated:Put",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:Delete",
    ]
    assert [r["s3"]["object"]["key"] for r in (put, completed, deleted)] == [key, "multi/ü é.bin", key]
    assert put["s3"]["object"]["size"] == 22
    assert put["s3"]["object"]["eTag"] == hashlib.md5(b"twenty-two bytes long.").hexdigest()
    assert deleted["s3"]["object"]["eTag"] == put["s3"]["object"]["eTag"]
    assert isinstance(put["s3"]["object"]["metadata"], list)


def test_ceph_topic_without_credentials_needs_no_forwarded_https_and_sends_no_auth(ceph_rgw: CephRGW) -> None:
    with WebhookRecorder() as hook:
        topic = ceph_topic(ceph_rgw, hook.url("/plain"), forwarded_https=False)
        bucket = ceph_rgw.create_bucket(unique_bucket("ceph-plain"))
        notify(ceph_rgw, bucket, topic)
        ceph_rgw.client().put_object(Bucket=bucket, Key="a+b c.jpg", Body=b"x")
        received = hook.wait_for(lambda got: len(got) >= 1, WAIT, "one record")
    assert "authorization" not in received[0].headers
    assert records(received)[0]["s3"]["object"]["key"] == "a+b c.jpg"


def wait_for_log(path: Any, text: str, timeout: float) -> None:
    """radosgw writes its log from a thread of its own: wait for ``text`` to reach the file."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not in {path} after {timeout} s"
        time.sleep(0.1)


def test_ceph_refuses_a_topic_with_a_password_over_plain_http(ceph_rgw: CephRGW) -> None:
    name = f"refused-{uuid.uuid4().hex[:12]}"
    attributes = {"push-endpoint": "http://thumbs:secret@127.0.0.1:9/events", "persistent": "false"}
    with pytest.raises(ClientError) as refused:
        ceph_rgw.sns_client(forwarded_https=False).create_topic(Name=name, Attributes=attributes)
    response = refused.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # radosgw answers with an S3-style <Error>, which boto3's SNS parser leaves outside "Error".
    assert response.get("Error", response).get("Code") == "InvalidInput"
    wait_for_log(ceph_rgw.log_path, "sending password over insecure transport", WAIT)
    topics = ceph_rgw.sns_client().list_topics()["Topics"]
    assert all(not topic["TopicArn"].endswith(f":{name}") for topic in topics)


# --- SeaweedFS: the filer's webhook ---------------------------------------------------------------------------


@pytest.fixture
def filer_webhook(seaweedfs: SeaweedFS) -> Iterator[WebhookRecorder]:
    """A recorder on the port the session's filer posts to."""
    with WebhookRecorder(seaweedfs.webhook_port) as hook:
        yield hook


def events_for(received: list[Received], path: str) -> list[dict[str, Any]]:
    return [event for event in (request.json() for request in received) if event["key"] == path]


def test_seaweedfs_filer_posts_its_own_json_with_the_raw_path_and_a_bearer_token(
    seaweedfs: SeaweedFS, filer_webhook: WebhookRecorder
) -> None:
    key = KEYS[0]
    s3 = seaweedfs.client()
    bucket = seaweedfs.create_bucket(unique_bucket("sw-notify"))
    path = f"/buckets/{bucket}/{key}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"twenty-two bytes long.")
    s3.put_object(Bucket=bucket, Key=key, Body=b"overwritten")
    s3.delete_object(Bucket=bucket, Key=key)
    received = filer_webhook.wait_for(lambda got: len(events_for(got, path)) >= 3, WAIT, f"three events for {path}")

    for request in received:
        assert (request.method, request.path) == ("POST", seaweedfs.webhook_path)
        assert request.headers["authorization"] == f"Bearer {seaweedfs.webhook_token}"
        assert request.headers["content-type"] == "application/json"
    created, updated, deleted = events_for(received, path)
    assert [e["event_type"] for e in (created, updated, deleted)] == ["create", "update", "delete"]
    entry = created["message"]["new_entry"]
    assert entry["name"] == "a b+c%20d é.jpg"
    assert entry["attributes"]["file_size"] == 22
    etag = hashlib.md5(b"twenty-two bytes long.").hexdigest()
    assert base64.b64decode(entry["extended"]["Seaweed-X-Amz-ETag"]).decode() == etag
    assert base64.b64decode(entry["attributes"]["md5"]) == bytes.fromhex(etag)
    assert updated["message"]["old_entry"]["attributes"]["file_size"] == 22
    assert updated["message"]["new_entry"]["attributes"]["file_size"] == len(b"overwritten")
    assert deleted["message"]["old_entry"]["name"] == entry["name"]
    assert "new_entry" not in deleted["message"]
    directory = events_for(received, f"/buckets/{bucket}/photos")
    assert directory and directory[0]["message"]["new_entry"]["is_directory"] is True


def test_seaweedfs_webhook_sends_one_event_per_put_and_per_delete(
    seaweedfs: SeaweedFS, filer_webhook: WebhookRecorder
) -> None:
    """Each write gives exactly one event; their order is NOT pinned.

    ``workers = 1`` made a DELETE overtake its PUT rare (here 2 of ~25 runs of 20 pairs, one pair each;
    0 of 300 and 0 of 90 pairs in single runs), not impossible: a receiver must not assume the order.
    """
    s3 = seaweedfs.client()
    bucket = seaweedfs.create_bucket(unique_bucket("sw-pairs"))
    paths = [f"/buckets/{bucket}/k{number}.jpg" for number in range(20)]
    for number in range(20):
        s3.put_object(Bucket=bucket, Key=f"k{number}.jpg", Body=b"x")
        s3.delete_object(Bucket=bucket, Key=f"k{number}.jpg")
    received = filer_webhook.wait_for(
        lambda got: sum(len(events_for(got, path)) for path in paths) >= 40, WAIT, "40 events"
    )
    for path in paths:
        assert sorted(e["event_type"] for e in events_for(received, path)) == ["create", "delete"], path


def test_seaweedfs_multipart_upload_notifies_the_object_once_among_upload_internals(
    seaweedfs: SeaweedFS, filer_webhook: WebhookRecorder
) -> None:
    bucket = seaweedfs.create_bucket(unique_bucket("sw-multipart"))
    key = "multi/ü é.bin"
    multipart_upload(seaweedfs.client(), bucket, key, [b"x" * PART, b"y"])
    path = f"/buckets/{bucket}/{key}"
    received = filer_webhook.wait_for(lambda got: bool(events_for(got, path)), WAIT, f"the event for {path}")
    (created,) = events_for(received, path)
    assert created["event_type"] == "create"
    assert created["message"]["new_entry"]["attributes"]["file_size"] == PART + 1
    etag = base64.b64decode(created["message"]["new_entry"]["extended"]["Seaweed-X-Amz-ETag"]).decode()
    assert etag.endswith("-2")
    internals = [request.json()["key"] for request in received]
    assert any(name.startswith(f"/buckets/{bucket}/.uploads/") for name in internals)
