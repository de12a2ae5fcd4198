"""The SQS consumer on moto's in-process SQS: real S3 → SQS, S3 → SNS → SQS and EventBridge → SQS deliveries."""

from __future__ import annotations

import json
import logging
import signal
import threading

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from click.testing import CliRunner

from s3thumbs.cli.main import main
from s3thumbs.keys import Layout
from s3thumbs.rules import Rules
from s3thumbs.sqs import Batch, Consumer, region_of
from tests.support.buckets import NOTIFIED_EVENTS
from tests.support.notifications import sns_confirmation
from tests.support.queues import make_queue, messages_left

REGION = "us-east-1"


@pytest.fixture
def mocked_sqs(mocked_s3):
    return boto3.client("sqs", region_name=REGION)


def notified_queue(s3, sqs, **attributes: str) -> str:
    """The URL of a new queue that receives the put and delete events of ``photos`` (a test event first)."""
    url, arn = make_queue(sqs, **attributes)
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": NOTIFIED_EVENTS}]},
    )
    return url


@pytest.fixture
def notified_queue_url(mocked_s3, mocked_sqs):
    return notified_queue(mocked_s3, mocked_sqs)


@pytest.fixture
def redelivering_queue_url(mocked_s3, mocked_sqs):
    """Like ``notified_queue_url``, but what is received and not deleted is visible again at once."""
    return notified_queue(mocked_s3, mocked_sqs, VisibilityTimeout="0")


@pytest.fixture
def consumer_published():
    return []


def consumer_for(sqs, url: str, publish, rules: Rules | None = None, **options) -> Consumer:
    return Consumer(sqs, url, publish, rules or Rules(), wait_seconds=0, **options)


def done(published) -> list[tuple[str, str, str]]:
    return [(event.action, event.bucket, event.key) for event in published]


def test_uploads_and_deletes_publish_one_task_each_and_empty_the_queue(
    mocked_s3, mocked_sqs, notified_queue_url, consumer_published, caplog
):
    caplog.set_level(logging.INFO, "s3thumbs")
    mocked_s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    mocked_s3.put_object(Bucket="photos", Key="old.png", Body=b"x")
    mocked_s3.delete_object(Bucket="photos", Key="old.png")
    batch = consumer_for(mocked_sqs, notified_queue_url, consumer_published.extend).poll()
    assert done(consumer_published) == [
        ("created", "photos", "a.jpg"),
        ("created", "photos", "old.png"),
        ("removed", "photos", "old.png"),
    ]
    assert consumer_published[0].etag == mocked_s3.head_object(Bucket="photos", Key="a.jpg")["ETag"].strip('"')
    assert batch == Batch(received=4, published=3, deleted=4, kept=0)
    assert messages_left(mocked_sqs, notified_queue_url) == 0
    assert "published created for s3://photos/a.jpg" in caplog.messages
    assert "published removed for s3://photos/old.png" in caplog.messages


def test_the_test_event_publishes_nothing_and_is_deleted(mocked_sqs, notified_queue_url, consumer_published, caplog):
    caplog.set_level(logging.INFO, "s3thumbs")
    assert consumer_for(mocked_sqs, notified_queue_url, consumer_published.extend).poll() == Batch(
        received=1, deleted=1
    )
    assert consumer_published == []
    assert messages_left(mocked_sqs, notified_queue_url) == 0
    assert "skipped s3://photos/: test event" in caplog.messages


def test_an_empty_queue_is_an_empty_batch(mocked_sqs, consumer_published):
    url, _ = make_queue(mocked_sqs)
    assert consumer_for(mocked_sqs, url, consumer_published.extend).poll() == Batch()


@pytest.mark.parametrize(
    "key", ["summer trip.jpg", "a+b.jpg", "dir/sub dir/été 2024 ✓.jpg", "100%25 sure.png", "percent%.jpg"]
)
def test_keys_are_decoded_once(mocked_s3, mocked_sqs, notified_queue_url, consumer_published, key):
    mocked_s3.put_object(Bucket="photos", Key=key, Body=b"x")
    consumer_for(mocked_sqs, notified_queue_url, consumer_published.extend).poll()
    assert done(consumer_published) == [("created", "photos", key)]


@pytest.mark.parametrize("raw", [False, True], ids=["envelope", "raw"])
def test_s3_through_sns_to_sqs(mocked_s3, mocked_sqs, consumer_published, caplog, raw):
    caplog.set_level(logging.INFO, "s3thumbs")
    sns = boto3.client("sns", region_name=REGION)
    url, arn = make_queue(mocked_sqs)
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true" if raw else "false"}
    )
    mocked_s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={"TopicConfigurations": [{"TopicArn": topic, "Events": NOTIFIED_EVENTS}]},
    )
    mocked_s3.put_object(Bucket="photos", Key="dir/my photo+1.jpg", Body=b"x")
    consumer = consumer_for(mocked_sqs, url, consumer_published.extend)
    while consumer.poll().received:
        pass
    assert done(consumer_published) == [("created", "photos", "dir/my photo+1.jpg")]
    assert messages_left(mocked_sqs, url) == 0
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_eventbridge_to_sqs(mocked_s3, mocked_sqs, consumer_published):
    events = boto3.client("events", region_name=REGION)
    url, arn = make_queue(mocked_sqs)
    mocked_s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "queue", "Arn": arn}])
    mocked_s3.put_object(Bucket="photos", Key="my photo+1.jpg", Body=b"x")
    consumer = consumer_for(mocked_sqs, url, consumer_published.extend)
    while consumer.poll().received:
        pass
    assert done(consumer_published) == [("created", "photos", "my photo+1.jpg")]
    assert messages_left(mocked_sqs, url) == 0


def test_thumbnails_non_images_and_other_buckets_are_skipped_and_deleted(
    mocked_s3, mocked_sqs, notified_queue_url, consumer_published, caplog
):
    caplog.set_level(logging.INFO, "s3thumbs")
    mocked_s3.put_object(Bucket="photos", Key="thumbnails/128x128/a.jpg", Body=b"x")
    mocked_s3.put_object(Bucket="photos", Key="notes.txt", Body=b"x")
    mocked_s3.put_object(Bucket="photos", Key="b.jpg", Body=b"x")
    batch = consumer_for(mocked_sqs, notified_queue_url, consumer_published.extend).poll()
    assert done(consumer_published) == [("created", "photos", "b.jpg")]
    assert batch == Batch(received=4, published=1, deleted=4)
    assert messages_left(mocked_sqs, notified_queue_url) == 0
    assert "skipped s3://photos/thumbnails/128x128/a.jpg: a thumbnail (output prefix or bucket)" in caplog.messages
    assert "skipped s3://photos/notes.txt: not an image key" in caplog.messages

    mocked_s3.put_object(Bucket="photos", Key="c.jpg", Body=b"x")
    elsewhere = Rules(Layout(), buckets=frozenset({"other"}))
    assert consumer_for(mocked_sqs, notified_queue_url, consumer_published.extend, elsewhere).poll() == Batch(
        received=1, deleted=1
    )
    assert "skipped s3://photos/c.jpg: bucket not in S3THUMBS_BUCKETS" in caplog.messages
    assert len(consumer_published) == 1


def broker_down(events):
    raise ConnectionRefusedError("broker down")


def test_a_broker_failure_leaves_the_messages_for_sqs_to_deliver_again(
    mocked_s3, mocked_sqs, redelivering_queue_url, consumer_published, caplog
):
    url = redelivering_queue_url
    mocked_s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    mocked_s3.put_object(Bucket="photos", Key="b.jpg", Body=b"x")
    assert consumer_for(mocked_sqs, url, broker_down).poll() == Batch(received=3, deleted=1, kept=2)
    assert (
        mocked_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "2"
    )
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "broker refused" in error.getMessage() and "broker down" in error.getMessage()

    assert consumer_for(mocked_sqs, url, consumer_published.extend).poll() == Batch(received=2, published=2, deleted=2)
    assert sorted(done(consumer_published)) == [("created", "photos", "a.jpg"), ("created", "photos", "b.jpg")]
    assert messages_left(mocked_sqs, url) == 0


def test_only_the_messages_whose_tasks_were_published_are_deleted(
    mocked_s3, mocked_sqs, redelivering_queue_url, consumer_published
):
    url = redelivering_queue_url
    keys = ["a.jpg", "b.jpg", "c.jpg"]
    for key in keys:
        mocked_s3.put_object(Bucket="photos", Key=key, Body=b"x")

    def fails_after_one(events):
        if consumer_published:
            raise ConnectionRefusedError("broker went down")
        consumer_published.extend(events)

    assert consumer_for(mocked_sqs, url, fails_after_one).poll() == Batch(received=4, published=1, deleted=2, kept=2)
    [first] = done(consumer_published)
    again = []
    assert consumer_for(mocked_sqs, url, again.extend).poll() == Batch(received=2, published=2, deleted=2)
    assert sorted([first, *done(again)]) == [("created", "photos", key) for key in keys]
    assert messages_left(mocked_sqs, url) == 0


SUBSCRIPTION = json.dumps(sns_confirmation(topic="arn:aws:sns:us-east-1:123456789012:uploads"))


@pytest.mark.parametrize(
    "body, reason",
    [
        ("not json at all", "body is not JSON"),
        ('{"hello": "world"}', "not an S3, MinIO, Ceph RGW, SNS, EventBridge or SeaweedFS notification"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "record has no s3.bucket.name"),
        (SUBSCRIPTION, "an SNS SubscriptionConfirmation for arn:aws:sns:us-east-1:123456789012:uploads"),
        ("x" * 100_000, "body is not JSON"),
    ],
)
def test_bodies_that_can_never_succeed_are_logged_and_deleted(mocked_sqs, consumer_published, caplog, body, reason):
    url, _ = make_queue(mocked_sqs)
    message_id = mocked_sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
    assert consumer_for(mocked_sqs, url, consumer_published.extend).poll() == Batch(received=1, deleted=1)
    assert consumer_published == []
    assert messages_left(mocked_sqs, url) == 0
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    logged = error.getMessage()
    assert message_id in logged and reason in logged
    assert body[:100] in logged
    assert len(logged) < 1000


def test_run_stops_after_the_batch_in_hand(mocked_s3, mocked_sqs, notified_queue_url):
    stop = threading.Event()
    published = []

    def publish_then_stop(events):
        published.extend(events)
        stop.set()

    mocked_s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    consumer_for(mocked_sqs, notified_queue_url, publish_then_stop).run(stop)
    assert done(published) == [("created", "photos", "a.jpg")]
    assert messages_left(mocked_sqs, notified_queue_url) == 0


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
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "ReceiveMessage"
    )


def test_run_retries_sqs_faults_that_pass_and_the_broker(mocked_s3, mocked_sqs, redelivering_queue_url, caplog):
    queue = redelivering_queue_url
    stop = threading.Event()
    published = []
    refusals = [ConnectionRefusedError("broker down")]

    def publish(events):
        if refusals:
            raise refusals.pop()
        published.extend(events)
        stop.set()

    flaky = Flaky(
        mocked_sqs,
        client_error("InternalError", 500),
        client_error("ThrottlingException", 400),
        client_error("RequestThrottled", 403),
        EndpointConnectionError(endpoint_url="https://sqs"),
    )
    mocked_s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    timer = threading.Timer(20, stop.set)  # a safety net: the test fails rather than hangs
    timer.start()
    try:
        Consumer(flaky, queue, publish, Rules(), wait_seconds=0, max_backoff=0.01).run(stop)
    finally:
        timer.cancel()
    assert done(published) == [("created", "photos", "a.jpg")]
    assert len([record for record in caplog.records if record.getMessage().startswith("SQS failed")]) == 4
    assert messages_left(mocked_sqs, queue) == 0


@pytest.mark.parametrize(
    "error", [client_error("AccessDenied", 403), client_error("AWS.SimpleQueueService.NonExistentQueue", 400)]
)
def test_run_stops_on_sqs_errors_that_cannot_pass(mocked_sqs, notified_queue_url, error):
    with pytest.raises(ClientError) as raised:
        Consumer(Flaky(mocked_sqs, error), notified_queue_url, broker_down, Rules(), wait_seconds=0).run(
            threading.Event()
        )
    assert raised.value is error


def test_the_command_explains_itself():
    result = CliRunner().invoke(main, ["sqs", "--help"])
    assert result.exit_code == 0
    for words in ("QUEUE_URL", "--wait", "--endpoint-url", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert words in result.output


def test_the_command_names_a_queue_that_does_not_exist(mocked_s3, monkeypatch):
    for name in ("S3THUMBS_BROKER_URL", "S3THUMBS_RESULT_BACKEND", "S3THUMBS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    result = CliRunner().invoke(main, ["sqs", url, "--wait", "0"])
    assert result.exit_code == 1
    assert url in result.output and "does not exist" in result.output
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


@pytest.mark.parametrize(
    "url, region",
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/uploads", "eu-west-1"),
        ("https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/uploads", "us-gov-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/uploads", "cn-north-1"),
        ("https://ap-southeast-2.queue.amazonaws.com/123456789012/uploads", "ap-southeast-2"),
        ("http://localhost:4566/000000000000/uploads", None),
        ("https://sqs.eu-west-1.amazonaws.com.evil.example/1/uploads", None),
    ],
)
def test_the_region_comes_from_an_aws_queue_url(url, region):
    assert region_of(url) == region


@pytest.mark.parametrize(
    "options", [{"wait_seconds": 21}, {"wait_seconds": -1}, {"max_messages": 0}, {"max_messages": 11}]
)
def test_sqs_limits_are_checked(options):
    with pytest.raises(ValueError):
        Consumer(object(), "https://sqs.eu-west-1.amazonaws.com/1/q", broker_down, Rules(), **options)
