"""The SQS consumer on moto's SQS (real S3 → SQS, S3 → SNS → SQS, EventBridge → SQS deliveries), then end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from click.testing import CliRunner

from s3thumbs.cli.main import main
from s3thumbs.keys import Layout
from s3thumbs.rules import Rules
from s3thumbs.sqs import Batch, Consumer, region_of
from tests.services import REGION, Service, empty_redis, s3_client, s3thumbs_env, wait_for, worker
from tests.test_pipeline import assert_thumbnails, jpeg

EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


@pytest.fixture
def sqs(s3):
    return boto3.client("sqs", region_name=REGION)


def make_queue(sqs, name: str = "uploads", **attributes: str) -> tuple[str, str]:
    """(URL, ARN) of a new queue."""
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def notified_queue(s3, sqs, **attributes: str) -> str:
    """The URL of a new queue that receives the put and delete events of ``photos`` (a test event first)."""
    url, arn = make_queue(sqs, **attributes)
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": EVENTS}]})
    return url


@pytest.fixture
def queue(s3, sqs):
    return notified_queue(s3, sqs)


@pytest.fixture
def redelivering_queue(s3, sqs):
    """Like ``queue``, but what is received and not deleted is visible again at once."""
    return notified_queue(s3, sqs, VisibilityTimeout="0")


@pytest.fixture
def published():
    return []


def consumer_for(sqs, url: str, publish, rules: Rules | None = None, **options) -> Consumer:
    return Consumer(sqs, url, publish, rules or Rules(), wait_seconds=0, **options)


def done(published) -> list[tuple[str, str, str]]:
    return [(event.action, event.bucket, event.key) for event in published]


def messages_left(sqs, url: str) -> int:
    """Messages still on the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_uploads_and_deletes_publish_one_task_each_and_empty_the_queue(s3, sqs, queue, published, caplog):
    caplog.set_level(logging.INFO, "s3thumbs")
    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    s3.put_object(Bucket="photos", Key="old.png", Body=b"x")
    s3.delete_object(Bucket="photos", Key="old.png")
    batch = consumer_for(sqs, queue, published.extend).poll()
    assert done(published) == [("created", "photos", "a.jpg"), ("created", "photos", "old.png"),
                               ("removed", "photos", "old.png")]
    assert published[0].etag == s3.head_object(Bucket="photos", Key="a.jpg")["ETag"].strip('"')
    assert batch == Batch(received=4, published=3, deleted=4, kept=0)
    assert messages_left(sqs, queue) == 0
    assert "published created for s3://photos/a.jpg" in caplog.messages
    assert "published removed for s3://photos/old.png" in caplog.messages


def test_the_test_event_publishes_nothing_and_is_deleted(sqs, queue, published, caplog):
    caplog.set_level(logging.INFO, "s3thumbs")
    assert consumer_for(sqs, queue, published.extend).poll() == Batch(received=1, deleted=1)
    assert published == []
    assert messages_left(sqs, queue) == 0
    assert "skipped s3://photos/: test event" in caplog.messages


def test_an_empty_queue_is_an_empty_batch(sqs, published):
    url, _ = make_queue(sqs)
    assert consumer_for(sqs, url, published.extend).poll() == Batch()


@pytest.mark.parametrize("key", ["summer trip.jpg", "a+b.jpg", "dir/sub dir/été 2024 ✓.jpg", "100%25 sure.png",
                                 "percent%.jpg"])
def test_keys_are_decoded_once(s3, sqs, queue, published, key):
    s3.put_object(Bucket="photos", Key=key, Body=b"x")
    consumer_for(sqs, queue, published.extend).poll()
    assert done(published) == [("created", "photos", key)]


@pytest.mark.parametrize("raw", [False, True], ids=["envelope", "raw"])
def test_s3_through_sns_to_sqs(s3, sqs, published, caplog, raw):
    caplog.set_level(logging.INFO, "s3thumbs")
    sns = boto3.client("sns", region_name=REGION)
    url, arn = make_queue(sqs)
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true" if raw else "false"})
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": EVENTS}]})
    s3.put_object(Bucket="photos", Key="dir/my photo+1.jpg", Body=b"x")
    consumer = consumer_for(sqs, url, published.extend)
    while consumer.poll().received:
        pass
    assert done(published) == [("created", "photos", "dir/my photo+1.jpg")]
    assert messages_left(sqs, url) == 0
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_eventbridge_to_sqs(s3, sqs, published):
    events = boto3.client("events", region_name=REGION)
    url, arn = make_queue(sqs)
    s3.put_bucket_notification_configuration(Bucket="photos",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "queue", "Arn": arn}])
    s3.put_object(Bucket="photos", Key="my photo+1.jpg", Body=b"x")
    consumer = consumer_for(sqs, url, published.extend)
    while consumer.poll().received:
        pass
    assert done(published) == [("created", "photos", "my photo+1.jpg")]
    assert messages_left(sqs, url) == 0


def test_thumbnails_non_images_and_other_buckets_are_skipped_and_deleted(s3, sqs, queue, published, caplog):
    caplog.set_level(logging.INFO, "s3thumbs")
    s3.put_object(Bucket="photos", Key="thumbnails/128x128/a.jpg", Body=b"x")
    s3.put_object(Bucket="photos", Key="notes.txt", Body=b"x")
    s3.put_object(Bucket="photos", Key="b.jpg", Body=b"x")
    batch = consumer_for(sqs, queue, published.extend).poll()
    assert done(published) == [("created", "photos", "b.jpg")]
    assert batch == Batch(received=4, published=1, deleted=4)
    assert messages_left(sqs, queue) == 0
    assert "skipped s3://photos/thumbnails/128x128/a.jpg: a thumbnail (output prefix or bucket)" in caplog.messages
    assert "skipped s3://photos/notes.txt: not an image key" in caplog.messages

    s3.put_object(Bucket="photos", Key="c.jpg", Body=b"x")
    elsewhere = Rules(Layout(), buckets=frozenset({"other"}))
    assert consumer_for(sqs, queue, published.extend, elsewhere).poll() == Batch(received=1, deleted=1)
    assert "skipped s3://photos/c.jpg: bucket not in S3THUMBS_BUCKETS" in caplog.messages
    assert len(published) == 1


def broker_down(events):
    raise ConnectionRefusedError("broker down")


def test_a_broker_failure_leaves_the_messages_for_sqs_to_deliver_again(s3, sqs, redelivering_queue, published,
                                                                        caplog):
    url = redelivering_queue
    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    s3.put_object(Bucket="photos", Key="b.jpg", Body=b"x")
    assert consumer_for(sqs, url, broker_down).poll() == Batch(received=3, deleted=1, kept=2)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "2"
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "broker refused" in error.getMessage() and "broker down" in error.getMessage()

    assert consumer_for(sqs, url, published.extend).poll() == Batch(received=2, published=2, deleted=2)
    assert sorted(done(published)) == [("created", "photos", "a.jpg"), ("created", "photos", "b.jpg")]
    assert messages_left(sqs, url) == 0


def test_only_the_messages_whose_tasks_were_published_are_deleted(s3, sqs, redelivering_queue, published):
    url = redelivering_queue
    keys = ["a.jpg", "b.jpg", "c.jpg"]
    for key in keys:
        s3.put_object(Bucket="photos", Key=key, Body=b"x")

    def fails_after_one(events):
        if published:
            raise ConnectionRefusedError("broker went down")
        published.extend(events)

    assert consumer_for(sqs, url, fails_after_one).poll() == Batch(received=4, published=1, deleted=2, kept=2)
    [first] = done(published)
    again = []
    assert consumer_for(sqs, url, again.extend).poll() == Batch(received=2, published=2, deleted=2)
    assert sorted([first, *done(again)]) == [("created", "photos", key) for key in keys]
    assert messages_left(sqs, url) == 0


SUBSCRIPTION = json.dumps({
    "Type": "SubscriptionConfirmation", "MessageId": "1", "Token": "abc",
    "TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads", "Message": "You have chosen to subscribe…",
    "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc",
})


@pytest.mark.parametrize("body, reason", [
    ("not json at all", "body is not JSON"),
    ('{"hello": "world"}', "not an S3, MinIO, SNS or EventBridge notification"),
    ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "record has no s3.bucket.name"),
    (SUBSCRIPTION, "an SNS SubscriptionConfirmation for arn:aws:sns:us-east-1:123456789012:uploads"),
    ("x" * 100_000, "body is not JSON"),
])
def test_bodies_that_can_never_succeed_are_logged_and_deleted(sqs, published, caplog, body, reason):
    url, _ = make_queue(sqs)
    message_id = sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
    assert consumer_for(sqs, url, published.extend).poll() == Batch(received=1, deleted=1)
    assert published == []
    assert messages_left(sqs, url) == 0
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    logged = error.getMessage()
    assert message_id in logged and reason in logged
    assert body[:100] in logged
    assert len(logged) < 1000


def test_run_stops_after_the_batch_in_hand(s3, sqs, queue):
    stop = threading.Event()
    published = []

    def publish_then_stop(events):
        published.extend(events)
        stop.set()

    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    consumer_for(sqs, queue, publish_then_stop).run(stop)
    assert done(published) == [("created", "photos", "a.jpg")]
    assert messages_left(sqs, queue) == 0


class Flaky:
    """The SQS client, whose receives first raise these errors, one each."""

    def __init__(self, client, *errors: Exception) -> None:
        self.client = client
        self.errors = list(errors)

    def receive_message(self, **kwargs):
        if self.errors:
            raise self.errors.pop(0)
        return self.client.receive_message(**kwargs)

    def delete_message_batch(self, **kwargs):
        return self.client.delete_message_batch(**kwargs)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "ReceiveMessage")


def test_run_retries_sqs_faults_that_pass_and_the_broker(s3, sqs, redelivering_queue, caplog):
    queue = redelivering_queue
    stop = threading.Event()
    published = []
    refusals = [ConnectionRefusedError("broker down")]

    def publish(events):
        if refusals:
            raise refusals.pop()
        published.extend(events)
        stop.set()

    flaky = Flaky(sqs, client_error("InternalError", 500), client_error("ThrottlingException", 400),
                  client_error("RequestThrottled", 403), EndpointConnectionError(endpoint_url="https://sqs"))
    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    timer = threading.Timer(20, stop.set)  # a safety net: the test fails rather than hangs
    timer.start()
    try:
        Consumer(flaky, queue, publish, Rules(), wait_seconds=0, max_backoff=0.01).run(stop)
    finally:
        timer.cancel()
    assert done(published) == [("created", "photos", "a.jpg")]
    assert len([record for record in caplog.records if record.getMessage().startswith("SQS failed")]) == 4
    assert messages_left(sqs, queue) == 0


@pytest.mark.parametrize("error", [client_error("AccessDenied", 403),
                                   client_error("AWS.SimpleQueueService.NonExistentQueue", 400)])
def test_run_stops_on_sqs_errors_that_cannot_pass(sqs, queue, error):
    with pytest.raises(ClientError) as raised:
        Consumer(Flaky(sqs, error), queue, broker_down, Rules(), wait_seconds=0).run(threading.Event())
    assert raised.value is error


def test_the_command_explains_itself():
    result = CliRunner().invoke(main, ["sqs", "--help"])
    assert result.exit_code == 0
    for words in ("QUEUE_URL", "--wait", "--endpoint-url", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert words in result.output


def test_the_command_names_a_queue_that_does_not_exist(s3, monkeypatch):
    for name in ("S3THUMBS_BROKER_URL", "S3THUMBS_RESULT_BACKEND", "S3THUMBS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    result = CliRunner().invoke(main, ["sqs", url, "--wait", "0"])
    assert result.exit_code == 1
    assert url in result.output and "does not exist" in result.output
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


@pytest.mark.parametrize("url, region", [
    ("https://sqs.eu-west-1.amazonaws.com/123456789012/uploads", "eu-west-1"),
    ("https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/uploads", "us-gov-west-1"),
    ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/uploads", "cn-north-1"),
    ("https://ap-southeast-2.queue.amazonaws.com/123456789012/uploads", "ap-southeast-2"),
    ("http://localhost:4566/000000000000/uploads", None),
    ("https://sqs.eu-west-1.amazonaws.com.evil.example/1/uploads", None),
])
def test_the_region_comes_from_an_aws_queue_url(url, region):
    assert region_of(url) == region


@pytest.mark.parametrize("options", [{"wait_seconds": 21}, {"wait_seconds": -1}, {"max_messages": 0},
                                     {"max_messages": 11}])
def test_sqs_limits_are_checked(options):
    with pytest.raises(ValueError):
        Consumer(object(), "https://sqs.eu-west-1.amazonaws.com/1/q", broker_down, Rules(), **options)


# End to end: moto's server → SQS → `s3thumbs sqs` process → Redis → `s3thumbs worker` process → S3.

def test_upload_through_sqs_makes_every_size(moto_endpoint, redis_server, tmp_path):
    env = s3thumbs_env(**empty_redis(redis_server, 5, 6),
                       s3_endpoint_url=moto_endpoint)
    name = f"sqs-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    url, arn = make_queue(sqs, name)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": EVENTS}]})
    key = "photos/summer trip+1é.jpg"
    consumer = Service(["sqs", url, "--endpoint-url", moto_endpoint, "--wait", "1"], env, tmp_path / "sqs.log")
    try:
        with worker(env, tmp_path / "worker.log"):
            consumer.wait_log(f"polling {url}")
            s3.put_object(Bucket=name, Key=key, Body=jpeg())
            assert_thumbnails(s3, name, key)
            consumer.wait_log("a thumbnail (output prefix or bucket)", count=3)
            wait_for(lambda: messages_left(sqs, url) == 0, 10, "an empty queue")
        assert consumer.log().count(f"published created for s3://{name}/{key}") == 1
        assert consumer.log().count("published ") == 1
        os.killpg(consumer.process.pid, signal.SIGTERM)
        assert consumer.process.wait(15) == 0
        with pytest.raises(ProcessLookupError):
            os.killpg(consumer.process.pid, 0)  # nothing left in its process group
        assert "stopped polling" in consumer.log()
    finally:
        consumer.stop()
