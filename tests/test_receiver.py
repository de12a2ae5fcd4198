from __future__ import annotations

import asyncio
import base64
import json

import pytest
from starlette.testclient import TestClient

from s3thumbs.draining import DRAIN_SECONDS
from s3thumbs.keys import Layout
from s3thumbs.receiver import create_app
from s3thumbs.rules import Rules
from tests.support.notifications import (
    minio_webhook,
    s3_notification,
    s3_record,
    s3_test_event,
    sns_confirmation,
    sns_notification,
)
from tests.support.publishing import Recorded

TOKEN = "s3cr3t-token"


class Refusing(Recorded):
    """A publish whose broker is down."""

    def __call__(self, events) -> None:
        raise ConnectionError("broker down")


@pytest.fixture
def published_events():
    return Recorded()


def client_for(publish, **options) -> TestClient:
    return TestClient(create_app(publish, **options))


def test_minio_webhook_with_bearer_token_publishes_decoded_key(published_events):
    client = client_for(published_events, token=TOKEN)
    response = client.post("/events", json=minio_webhook(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202
    assert [(e.bucket, e.key, e.action) for e in published_events] == [("uploads", "dir/my photo+1é.jpg", "created")]
    assert response.json()["accepted"] == [{"bucket": "uploads", "key": "dir/my photo+1é.jpg", "action": "created"}]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic " + base64.b64encode(b"u:wrong").decode(), "Token " + TOKEN, "Basic !!!"]
)
def test_missing_or_wrong_token_is_401_with_basic_challenge(published_events, header):
    client = client_for(published_events, token=TOKEN)
    headers = {"Authorization": header} if header else {}
    response = client.post("/events", json=minio_webhook(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert published_events == []


def test_basic_auth_with_token_as_password_is_accepted(published_events):
    client = client_for(published_events, token=TOKEN)
    credentials = base64.b64encode(f"sns:{TOKEN}".encode()).decode()
    response = client.post("/events", json=minio_webhook(), headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 202
    assert len(published_events) == 1


def test_head_events_needs_no_token(published_events):
    assert client_for(published_events, token=TOKEN).head("/events").status_code == 200


def test_health_and_readiness():
    ready = {"value": True}
    client = client_for(Recorded(), token=TOKEN, ready=lambda: ready["value"])
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    ready["value"] = False
    assert client.get("/readyz").status_code == 503


def test_sns_text_plain_body_is_parsed(published_events):
    envelope = sns_notification(json.dumps(s3_notification(s3_record("uploads", "a b.png"))))
    response = client_for(published_events).post(
        "/events", content=json.dumps(envelope), headers={"Content-Type": "text/plain; charset=UTF-8"}
    )
    assert response.status_code == 202
    assert [e.key for e in published_events] == ["a b.png"]


@pytest.mark.parametrize(
    ("key", "event", "bucket", "reason"),
    [
        ("thumbnails/128x128/a.jpg", "s3:ObjectCreated:Put", "uploads", "a thumbnail"),
        ("notes.txt", "s3:ObjectCreated:Put", "uploads", "not an image"),
        ("no-extension", "s3:ObjectCreated:Put", "uploads", "not an image"),
        ("a.jpg", "s3:ObjectCreated:PutTagging", "uploads", "does not change content"),
        ("a.jpg", "s3:ObjectAccessed:Get", "uploads", "does not change content"),
        ("a.jpg", "s3:ObjectCreated:Put", "elsewhere", "S3THUMBS_BUCKETS"),
    ],
)
def test_irrelevant_events_are_2xx_and_publish_nothing(published_events, key, event, bucket, reason):
    client = client_for(published_events, rules=Rules(Layout("thumbnails/"), frozenset({"uploads"})))
    body = minio_webhook(bucket, key, event=event, content_type="application/octet-stream")
    response = client.post("/events", json=body)
    assert response.status_code == 200
    assert published_events == []
    [skipped] = response.json()["skipped"]
    assert reason in skipped["reason"]


def test_oversized_source_is_skipped(published_events):
    client = client_for(published_events, rules=Rules(max_bytes=1000))
    response = client.post("/events", json=minio_webhook(size=1001))
    assert response.status_code == 200
    assert published_events == []


def test_removed_events_publish_deletes(published_events):
    body = minio_webhook(event="s3:ObjectRemoved:Delete", etag=None, size=None)
    response = client_for(published_events).post("/events", json=body)
    assert response.status_code == 202
    assert [e.action for e in published_events] == ["removed"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"hello": "world"}', b"", b'{"Records": 5}'])
def test_bodies_that_are_no_notification_are_400(published_events, body):
    response = client_for(published_events).post("/events", content=body)
    assert response.status_code == 400
    assert published_events == []


def test_s3_test_event_is_accepted_and_ignored(published_events):
    response = client_for(published_events).post("/events", json=s3_test_event("uploads"))
    assert response.status_code == 200
    assert published_events == []


def test_body_over_limit_is_413(published_events):
    body = json.dumps(minio_webhook()).encode() + b" " * 2000
    response = client_for(published_events, max_body_bytes=1000).post("/events", content=body)
    assert response.status_code == 413
    assert published_events == []


def test_broker_failure_is_503_never_2xx():
    response = client_for(Refusing()).post("/events", json=minio_webhook())
    assert response.status_code == 503


SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=t&Token=x"
ALLOWED_TOPIC = "arn:aws:sns:us-east-1:123:uploads"


def test_subscription_confirmed_for_allowed_topic_on_sns_host(published_events):
    fetched: list[str] = []
    topics = frozenset({ALLOWED_TOPIC})
    confirmation = sns_confirmation(topic=ALLOWED_TOPIC, subscribe_url=SUBSCRIBE_URL)
    response = client_for(published_events, sns_topics=topics, confirm=fetched.append).post(
        "/events", json=confirmation
    )
    assert response.status_code == 200
    assert fetched == [SUBSCRIBE_URL]


@pytest.mark.parametrize(
    ("topic", "url"),
    [
        ("arn:aws:sns:us-east-1:123:other", SUBSCRIBE_URL),
        ("arn:aws:sns:us-east-1:123:uploads", "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"),
        ("arn:aws:sns:us-east-1:123:uploads", "https://evil.example.com/?sns.us-east-1.amazonaws.com"),
        ("arn:aws:sns:us-east-1:123:uploads", "https://sns.us-east-1.amazonaws.com.evil.example/"),
    ],
)
def test_subscription_refused_for_other_topics_or_hosts(published_events, topic, url):
    fetched: list[str] = []
    topics = frozenset({ALLOWED_TOPIC})
    response = client_for(published_events, sns_topics=topics, confirm=fetched.append).post(
        "/events", json=sns_confirmation(topic=topic, subscribe_url=url)
    )
    assert response.status_code == 403
    assert fetched == []


def test_a_broker_that_never_answers_is_503_within_the_deadline():
    import threading
    import time

    release = threading.Event()

    class Stalled(Recorded):
        def __call__(self, events) -> None:
            release.wait(30)

    client = client_for(Stalled(), publish_timeout=0.5)
    started = time.monotonic()
    response = client.post("/events", json=minio_webhook())
    elapsed = time.monotonic() - started
    release.set()
    assert response.status_code == 503
    assert elapsed < 5


@pytest.mark.parametrize(
    "raw",
    [
        b'"s3:ObjectCreated:PutTagging\\ud800"',  # an escape in an otherwise ASCII body
        b'"s3:ObjectCreated:PutTagging\\uDFFF"',
        b'"s3:ObjectCreated:PutTagging\xed\xa0\x80"',  # a surrogate encoded in the raw bytes
        '"s3:ObjectCreated:PutTagging é\\udfff"'.encode(),
    ],
)
def test_a_lone_surrogate_anywhere_is_400_however_it_is_written(published_events, raw):
    body = json.dumps(minio_webhook(event="EVENT")).encode().replace(b'"EVENT"', raw)
    response = client_for(published_events).post("/events", content=body)
    assert response.status_code == 400
    assert published_events == []


@pytest.mark.parametrize(
    ("bucket", "key", "why"),
    [
        ("bad bucket!", "a.jpg", "bucket name"),
        ("a" * 256, "a.jpg", "bucket name"),
        ("", "a.jpg", "bucket name"),
        ("photos\n", "a.jpg", "bucket name"),
        ("photos", "", "empty key"),
        ("photos", "é" * 511 + ".jpg", "1024 bytes"),  # 1,026 bytes of UTF-8
    ],
)
def test_a_record_naming_what_s3_could_never_hold_is_skipped_and_breaks_nothing_else(
    published_events, bucket, key, why
):
    forged = minio_webhook(bucket, key, content_type="image/jpeg")["Records"][0]
    body = {"Records": [forged, minio_webhook("photos", "fine.jpg")["Records"][0]]}
    response = client_for(published_events).post("/events", json=body)
    assert response.status_code == 202
    assert [(e.bucket, e.key) for e in published_events] == [("photos", "fine.jpg")]
    [skipped] = response.json()["skipped"]
    assert (skipped["code"], why in skipped["reason"]) == ("invalid_name", True)


@pytest.mark.parametrize(
    ("bucket", "key"),
    [("Old_Bucket.Name", "a.jpg"), ("a" * 255, "a.jpg"), ("photos", "é" * 510 + ".jpg"), ("photos", " ")],
)
def test_names_s3_holds_are_taken_even_where_todays_rules_are_stricter(published_events, bucket, key):
    # Legacy us-east-1 buckets (upper case, underscores, up to 255 characters) and MinIO/Ceph names exist.
    response = client_for(published_events).post("/events", json=minio_webhook(bucket, key))
    assert response.status_code == 202
    assert [(e.bucket, e.key) for e in published_events] == [(bucket, key)]


@pytest.mark.parametrize(
    "browser",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "same-origin"},
    ],
)
def test_a_browser_cannot_post_events_even_with_the_token(published_events, browser):
    # A page elsewhere can make a browser post, with the Basic credentials that browser keeps.
    client = client_for(published_events, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain", **browser}
    response = client.post("/events", content=json.dumps(minio_webhook()), headers=headers)
    assert response.status_code == 403
    assert published_events == []


def test_a_users_own_navigation_is_no_cross_site_request(published_events):
    headers = {"Authorization": f"Bearer {TOKEN}", "Sec-Fetch-Site": "none"}
    response = client_for(published_events, token=TOKEN).post("/events", json=minio_webhook(), headers=headers)
    assert response.status_code == 202


def test_a_body_that_does_not_arrive_in_time_is_408_and_frees_the_connection(published_events):
    # A sender dribbling its body (or stopping half-way) must not hold a connection for ever.
    app = create_app(published_events, body_timeout=0.5)
    scope = {"type": "http", "method": "POST", "path": "/events", "headers": [], "query_string": b""}
    sent: list[dict] = []
    first = [{"type": "http.request", "body": b'{"Records": [', "more_body": True}]

    async def receive() -> dict:
        if first:
            return first.pop()
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    async def serve() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=0.5 + DRAIN_SECONDS + 5)

    asyncio.run(serve())
    assert sent[0]["status"] == 408
    assert published_events == []
