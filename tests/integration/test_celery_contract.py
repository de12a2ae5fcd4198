"""The Celery contract on real brokers: what lands on the queue, which any Celery client could have sent."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from kombu import Connection

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_call, task_id
from s3thumbs.publisher import BrokerPublisher
from tests.support.publishing import publish_events
from tests.support.servers import empty_rabbitmq


def send_each(app, events) -> None:
    """Publish as any plain Celery client does, through ``send_task``."""
    with app.producer_or_acquire() as producer:
        for event in events:
            call = task_call(event)
            app.send_task(
                call.name, args=call.args, kwargs=call.kwargs, queue="s3thumbs", task_id=call.task_id, producer=producer
            )


def test_tasks_land_on_the_plain_redis_list_as_json(redis_server):
    redis = redis_server.client(13)
    redis.flushdb()
    events = [
        ObjectEvent("created", "photos", "a b+c/é.jpg", "ObjectCreated:Put", etag="abc", version_id="v1"),
        ObjectEvent("removed", "photos", "gone.jpg", "ObjectRemoved:Delete"),
    ]
    publish_events(redis_server.url_for(13), events)
    assert sorted(k.decode() for k in redis.keys("*") if not k.startswith(b"_kombu")) == ["s3thumbs"]
    messages = [json.loads(raw) for raw in reversed(redis.lrange("s3thumbs", 0, -1))]
    bodies = [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))) for m in messages]
    assert [m["content-type"] for m in messages] == ["application/json"] * 2
    assert bodies == [
        (
            "s3thumbs.thumbnail",
            [
                ["photos", "a b+c/é.jpg"],
                {"etag": "abc", "version_id": "v1"},
                {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
            ],
        ),
        (
            "s3thumbs.delete_thumbnails",
            [["photos", "gone.jpg"], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        ),
    ]
    assert messages[0]["headers"]["id"] == task_id(events[0])


def test_the_rabbitmq_queue_is_classic_durable_with_no_arguments(rabbitmq_server):
    publish_events(rabbitmq_server.url, [ObjectEvent("created", "photos", "a.jpg", "ObjectCreated:Put")])
    with Connection(rabbitmq_server.url) as connection:
        channel = connection.default_channel
        # A passive declare with other flags or arguments would fail with PRECONDITION_FAILED.
        name, count, _ = channel.queue_declare(
            "s3thumbs", durable=True, auto_delete=False, arguments=None, passive=False
        )
        assert name == "s3thumbs" and count >= 1
        channel.queue_purge("s3thumbs")


EVENTS = [
    ObjectEvent("created", "photos", "a b+c/é.jpg", "ObjectCreated:Put", etag="abc", version_id="v1"),
    ObjectEvent("created", "photos", "plain.png", "ObjectCreated:Post", sequencer="0A1B"),
    ObjectEvent("removed", "photos", "gone.jpg", "ObjectRemoved:Delete"),
]


def _taken(redis) -> list[dict]:
    """The messages on the Redis list, oldest first, emptied; without the per-message delivery tag."""
    raw = redis.lrange("s3thumbs", 0, -1)
    redis.delete("s3thumbs")
    messages = [json.loads(m) for m in reversed(raw)]
    for message in messages:
        del message["properties"]["delivery_tag"]
    return messages


def test_the_receivers_publisher_sends_exactly_what_send_task_sends(redis_factory):
    server = redis_factory()
    app = celery_app.create_app(Settings(broker_url=server.url_for(0), result_backend=None), results=False)
    with server.client(0) as redis:
        send_each(app, EVENTS)
        expected = _taken(redis)
        publisher = BrokerPublisher(app)
        publisher(EVENTS)
        publisher.close()
        assert _taken(redis) == expected
    assert [m["headers"]["task"] for m in expected] == ["s3thumbs.thumbnail"] * 2 + ["s3thumbs.delete_thumbnails"]
    assert [m["headers"]["id"] for m in expected] == [task_id(e) for e in EVENTS]


def test_the_publisher_on_rabbitmq_returns_once_the_whole_batch_is_in_the_queue(rabbitmq_server):
    url = empty_rabbitmq(rabbitmq_server.url, "s3thumbs")
    app = celery_app.create_app(Settings(broker_url=url, result_backend=None), results=False)
    events = [ObjectEvent("created", "photos", f"{n}.jpg", "ObjectCreated:Put") for n in range(200)]
    publisher = BrokerPublisher(app)
    try:
        publisher(events[:100])
        publisher(events[100:])
    finally:
        publisher.close()
    with Connection(url) as connection:
        channel = connection.default_channel
        _, count, _ = channel.queue_declare("s3thumbs", durable=True, auto_delete=False, passive=True)
        assert count == 200  # confirmed, so already counted
        ids = []
        while (message := channel.basic_get("s3thumbs", no_ack=True)) is not None:
            ids.append(message.headers["id"])
    assert ids == [task_id(e) for e in events]


def _publisher_survives_a_broker_restart(broker, url: str, count) -> None:
    app = celery_app.create_app(Settings(broker_url=url, result_backend=None), results=False)
    publisher = BrokerPublisher(app)
    event = ObjectEvent("created", "photos", "a.jpg", "ObjectCreated:Put")
    try:
        publisher([event])
        broker.stop()
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises: the receiver answers 503
            publisher([event])
        assert time.monotonic() - started < 10
        broker.start()
        publisher([event])  # on a new connection: the old one died with the broker
    finally:
        publisher.close()
    assert count() == 2


def test_the_publisher_raises_while_redis_is_down_and_reconnects_once_it_is_back(redis_factory):
    server = redis_factory(appendonly=True)

    def count() -> int:
        with server.client(0) as redis:
            return int(redis.llen("s3thumbs"))

    _publisher_survives_a_broker_restart(server, server.url_for(0), count)


@pytest.mark.slow
def test_the_publisher_raises_while_rabbitmq_is_down_and_reconnects_once_it_is_back(rabbitmq_factory):
    node = rabbitmq_factory()

    def count() -> int:
        with Connection(node.url) as connection:
            return int(connection.default_channel.queue_declare("s3thumbs", durable=True, passive=True)[1])

    _publisher_survives_a_broker_restart(node, node.url, count)


@pytest.mark.slow
def test_the_publisher_raises_when_rabbitmq_refuses_part_of_a_batch(rabbitmq_factory):
    """A full queue that rejects publishes answers with nacks: the batch must not count as published."""
    node = rabbitmq_factory()
    node.ctl(
        "set_policy", "full", "^s3thumbs$", '{"max-length": 2, "overflow": "reject-publish"}', "--apply-to", "queues"
    )
    app = celery_app.create_app(Settings(broker_url=node.url, result_backend=None), results=False)
    publisher = BrokerPublisher(app)
    events = [ObjectEvent("created", "photos", f"{n}.jpg", "ObjectCreated:Put") for n in range(5)]
    try:
        publisher(events[:2])
        with pytest.raises(ConnectionError, match="refused"):
            publisher(events[2:])
    finally:
        publisher.close()


def test_two_threads_can_publish_through_one_publisher_at_once(rabbitmq_server):
    """The receiver runs two publisher threads on RabbitMQ: each must get a channel of its own."""
    url = empty_rabbitmq(rabbitmq_server.url, "s3thumbs")
    app = celery_app.create_app(Settings(broker_url=url, result_backend=None), results=False)
    publisher = BrokerPublisher(app)
    events = [ObjectEvent("created", "photos", f"{n}.jpg", "ObjectCreated:Put") for n in range(200)]
    failures: list[BaseException] = []

    def publish(share) -> None:
        try:
            for n in range(0, len(share), 4):
                publisher(share[n : n + 4])
        except BaseException as e:
            failures.append(e)
        finally:
            publisher.close()

    threads = [threading.Thread(target=publish, args=(events[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Connection(url) as connection:
        channel = connection.default_channel
        ids = set()
        while (message := channel.basic_get("s3thumbs", no_ack=True)) is not None:
            ids.add(message.headers["id"])
    assert ids == {task_id(e) for e in events}
