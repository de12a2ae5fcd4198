from __future__ import annotations

import base64
import json

import pytest
from starlette.testclient import TestClient

from s3thumbs.keys import Layout
from s3thumbs.receiver import create_app
from s3thumbs.rules import Rules

TOKEN = "s3cr3t-token"


def minio_body(key: str = "dir%2Fmy+photo%2B1%C3%A9.jpg", event: str = "s3:ObjectCreated:Put",
               bucket: str = "uploads", size: int = 6474, content_type: str = "image/jpeg") -> dict:
    record = {
        "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "", "eventName": event,
        "eventTime": "2026-01-01T12:00:00.123Z", "userIdentity": {"principalId": "minioadmin"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": size, "eTag": "430f", "contentType": content_type,
                          "sequencer": "1876A0B2C3D4E5F6"}},
    }
    return {"EventName": event, "Key": f"{bucket}/{key}", "Records": [record]}


class Recorder:
    """A list-backed publish: the broker seam."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list = []
        self.fail = fail

    def __call__(self, events) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.events.extend(events)

    def close(self) -> None:
        """Nothing to drop."""


@pytest.fixture
def published():
    return Recorder()


def client_for(publish, **options) -> TestClient:
    return TestClient(create_app(publish, **options))


def test_minio_webhook_with_bearer_token_publishes_decoded_key(published):
    client = client_for(published, token=TOKEN)
    response = client.post("/events", json=minio_body(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202
    assert [(e.bucket, e.key, e.action) for e in published.events] == [
        ("uploads", "dir/my photo+1é.jpg", "created")]
    assert response.json()["accepted"] == [{"bucket": "uploads", "key": "dir/my photo+1é.jpg",
                                            "action": "created"}]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic " + base64.b64encode(b"u:wrong").decode(),
                                    "Token " + TOKEN, "Basic !!!"])
def test_missing_or_wrong_token_is_401_with_basic_challenge(published, header):
    client = client_for(published, token=TOKEN)
    headers = {"Authorization": header} if header else {}
    response = client.post("/events", json=minio_body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert published.events == []


def test_basic_auth_with_token_as_password_is_accepted(published):
    client = client_for(published, token=TOKEN)
    credentials = base64.b64encode(f"sns:{TOKEN}".encode()).decode()
    response = client.post("/events", json=minio_body(), headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 202
    assert len(published.events) == 1


def test_head_events_needs_no_token(published):
    assert client_for(published, token=TOKEN).head("/events").status_code == 200


def test_health_and_readiness():
    ready = {"value": True}
    client = client_for(Recorder(), token=TOKEN, ready=lambda: ready["value"])
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    ready["value"] = False
    assert client.get("/readyz").status_code == 503


def test_sns_text_plain_body_is_parsed(published):
    message = json.dumps({"Records": [minio_body(key="a+b.png")["Records"][0] | {"eventName": "ObjectCreated:Put"}]})
    envelope = {"Type": "Notification", "MessageId": "m1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                "Message": message, "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1"}
    response = client_for(published).post("/events", content=json.dumps(envelope),
                                          headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert response.status_code == 202
    assert [e.key for e in published.events] == ["a b.png"]


@pytest.mark.parametrize(("key", "event", "bucket", "reason"), [
    ("thumbnails%2F128x128%2Fa.jpg", "s3:ObjectCreated:Put", "uploads", "a thumbnail"),
    ("notes.txt", "s3:ObjectCreated:Put", "uploads", "not an image"),
    ("no-extension", "s3:ObjectCreated:Put", "uploads", "not an image"),
    ("a.jpg", "s3:ObjectCreated:PutTagging", "uploads", "does not change content"),
    ("a.jpg", "s3:ObjectAccessed:Get", "uploads", "does not change content"),
    ("a.jpg", "s3:ObjectCreated:Put", "elsewhere", "S3THUMBS_BUCKETS"),
])
def test_irrelevant_events_are_2xx_and_publish_nothing(published, key, event, bucket, reason):
    client = client_for(published, rules=Rules(Layout("thumbnails/"), frozenset({"uploads"})))
    body = minio_body(key=key, event=event, bucket=bucket, content_type="application/octet-stream")
    response = client.post("/events", json=body)
    assert response.status_code == 200
    assert published.events == []
    [skipped] = response.json()["skipped"]
    assert reason in skipped["reason"]


def test_oversized_source_is_skipped(published):
    client = client_for(published, rules=Rules(max_bytes=1000))
    response = client.post("/events", json=minio_body(size=1001))
    assert response.status_code == 200
    assert published.events == []


def test_removed_events_publish_deletes(published):
    body = minio_body(event="s3:ObjectRemoved:Delete")
    del body["Records"][0]["s3"]["object"]["size"]
    response = client_for(published).post("/events", json=body)
    assert response.status_code == 202
    assert [e.action for e in published.events] == ["removed"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"hello": "world"}', b"", b'{"Records": 5}'])
def test_bodies_that_are_no_notification_are_400(published, body):
    response = client_for(published).post("/events", content=body)
    assert response.status_code == 400
    assert published.events == []


def test_s3_test_event_is_accepted_and_ignored(published):
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z",
            "Bucket": "uploads", "RequestId": "r", "HostId": "h"}
    response = client_for(published).post("/events", json=body)
    assert response.status_code == 200
    assert published.events == []


def test_body_over_limit_is_413(published):
    body = json.dumps(minio_body()).encode() + b" " * 2000
    response = client_for(published, max_body_bytes=1000).post("/events", content=body)
    assert response.status_code == 413
    assert published.events == []


def test_broker_failure_is_503_never_2xx():
    response = client_for(Recorder(fail=True)).post("/events", json=minio_body())
    assert response.status_code == 503


SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=t&Token=x"


def confirmation(topic: str = "arn:aws:sns:us-east-1:123:uploads", url: str = SUBSCRIBE_URL) -> dict:
    return {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "x", "TopicArn": topic,
            "Message": "You have chosen to subscribe", "SubscribeURL": url,
            "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1"}


def test_subscription_confirmed_for_allowed_topic_on_sns_host(published):
    fetched: list[str] = []
    topics = frozenset({"arn:aws:sns:us-east-1:123:uploads"})
    response = client_for(published, sns_topics=topics, confirm=fetched.append).post("/events", json=confirmation())
    assert response.status_code == 200
    assert fetched == [SUBSCRIBE_URL]


@pytest.mark.parametrize(("topic", "url"), [
    ("arn:aws:sns:us-east-1:123:other", SUBSCRIBE_URL),
    ("arn:aws:sns:us-east-1:123:uploads", "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"),
    ("arn:aws:sns:us-east-1:123:uploads", "https://evil.example.com/?sns.us-east-1.amazonaws.com"),
    ("arn:aws:sns:us-east-1:123:uploads", "https://sns.us-east-1.amazonaws.com.evil.example/"),
])
def test_subscription_refused_for_other_topics_or_hosts(published, topic, url):
    fetched: list[str] = []
    topics = frozenset({"arn:aws:sns:us-east-1:123:uploads"})
    response = client_for(published, sns_topics=topics, confirm=fetched.append).post(
        "/events", json=confirmation(topic, url))
    assert response.status_code == 403
    assert fetched == []


def test_a_broker_that_never_answers_is_503_within_the_deadline():
    import threading
    import time

    release = threading.Event()
    class Stalled(Recorder):
        def __call__(self, events) -> None:
            release.wait(30)

    client = client_for(Stalled(), publish_timeout=0.5)
    started = time.monotonic()
    response = client.post("/events", json=minio_body())
    elapsed = time.monotonic() - started
    release.set()
    assert response.status_code == 503
    assert elapsed < 5


@pytest.mark.parametrize("raw", [
    b'"s3:ObjectCreated:PutTagging\\ud800"',  # an escape in an otherwise ASCII body
    b'"s3:ObjectCreated:PutTagging\\uDFFF"',
    b'"s3:ObjectCreated:PutTagging\xed\xa0\x80"',  # a surrogate encoded in the raw bytes
    '"s3:ObjectCreated:PutTagging é\\udfff"'.encode(),
])
def test_a_lone_surrogate_anywhere_is_400_however_it_is_written(published, raw):
    body = json.dumps(minio_body(event="EVENT")).encode().replace(b'"EVENT"', raw)
    response = client_for(published).post("/events", content=body)
    assert response.status_code == 400
    assert published.events == []
