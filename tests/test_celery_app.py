"""The Celery contract: settings that make delivery at-least-once and bounded, and messages any client can send."""

from __future__ import annotations

import base64
import json

from kombu import Connection

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent


def test_worker_settings_make_delivery_at_least_once_and_bounded():
    settings = Settings.from_env({"S3THUMBS_TASK_TIME_LIMIT": "60", "S3THUMBS_VISIBILITY_TIMEOUT": "900"})
    conf = celery_app.create_app(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.task_retry_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (60, 48)
    assert conf.worker_max_memory_per_child == celery_app.MAX_MEMORY_PER_CHILD_KIB
    assert conf.worker_max_tasks_per_child == celery_app.MAX_TASKS_PER_CHILD
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 900
    assert options["unacked_restore_throttle"] == 1


def test_rabbitmq_publishes_are_confirmed():
    settings = Settings(broker_url="amqp://guest:guest@localhost:5672//")
    assert celery_app.create_app(settings).conf.broker_transport_options == {"confirm_publish": True}


def test_the_receiver_app_has_no_result_backend():
    assert celery_app.create_app(Settings(), results=False).conf.result_backend is None


def test_tasks_land_on_the_plain_redis_list_as_json(redis_server):
    redis = redis_server.client(13)
    redis.flushdb()
    app = celery_app.create_app(Settings(broker_url=redis_server.url_for(13), result_backend=None), results=False)
    events = [ObjectEvent("created", "photos", "a b+c/é.jpg", "ObjectCreated:Put", etag="abc", version_id="v1"),
              ObjectEvent("removed", "photos", "gone.jpg", "ObjectRemoved:Delete")]
    celery_app.publish(app, events)
    assert sorted(k.decode() for k in redis.keys("*") if not k.startswith(b"_kombu")) == ["s3thumbs"]
    messages = [json.loads(raw) for raw in reversed(redis.lrange("s3thumbs", 0, -1))]
    bodies = [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))) for m in messages]
    assert [m["content-type"] for m in messages] == ["application/json"] * 2
    assert bodies == [
        ("s3thumbs.thumbnail", [["photos", "a b+c/é.jpg"], {"etag": "abc", "version_id": "v1"},
                                {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]),
        ("s3thumbs.delete_thumbnails", [["photos", "gone.jpg"], {},
                                        {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]),
    ]
    assert messages[0]["headers"]["id"] == celery_app.task_id(events[0])


def test_the_rabbitmq_queue_is_classic_durable_with_no_arguments(rabbitmq_server):
    app = celery_app.create_app(Settings(broker_url=rabbitmq_server.url, result_backend=None), results=False)
    celery_app.publish(app, [ObjectEvent("created", "photos", "a.jpg", "ObjectCreated:Put")])
    with Connection(rabbitmq_server.url) as connection:
        channel = connection.default_channel
        # A passive declare with other flags or arguments would fail with PRECONDITION_FAILED.
        name, count, _ = channel.queue_declare("s3thumbs", durable=True, auto_delete=False, arguments=None,
                                               passive=False)
        assert name == "s3thumbs" and count >= 1
        channel.queue_purge("s3thumbs")
