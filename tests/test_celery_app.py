"""The Celery settings that make delivery at-least-once and bounded."""

from __future__ import annotations

from s3thumbs import celery_app
from s3thumbs.config import Settings


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
