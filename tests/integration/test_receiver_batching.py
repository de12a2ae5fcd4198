"""Concurrent keep-alive clients on the real receiver and real brokers: every event a client heard 202 for
is on the broker."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from kombu import Connection

from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env
from tests.support.servers import empty_rabbitmq

TOKEN = "batching-token"

CLIENTS = 4
PER_CLIENT = 50


def post_concurrently(url: str, prefix: str) -> dict[str, int]:
    """CLIENTS keep-alive clients, each posting PER_CLIENT events one after another; status per key."""

    def client(n: int) -> dict[str, int]:
        statuses = {}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            for i in range(PER_CLIENT):
                key = f"{prefix}/{n}-{i}.jpg"
                statuses[key] = http.post("/events", json=minio_webhook("uploads", key, "e1")).status_code
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    return {key: status for result in results for key, status in result.items()}


def test_concurrent_clients_on_redis_every_accepted_event_is_on_the_broker(redis_factory, tmp_path):
    server = redis_factory()
    env = s3thumbs_env(broker_url=server.url_for(0), result_backend="", auth_token=TOKEN)
    with receiver(env, tmp_path / "receiver.log") as url:
        statuses = post_concurrently(url, "redis")
    assert set(statuses.values()) == {202}
    with server.client(0) as redis:
        messages = [json.loads(raw) for raw in redis.lrange("s3thumbs", 0, -1)]
    keys = [json.loads(base64.b64decode(m["body"]))[0][1] for m in messages]
    assert sorted(keys) == sorted(statuses)


def test_concurrent_clients_on_rabbitmq_every_accepted_event_is_on_the_broker(rabbitmq_server, tmp_path):
    url = empty_rabbitmq(rabbitmq_server.url, "s3thumbs")
    env = s3thumbs_env(broker_url=url, result_backend="", auth_token=TOKEN)
    with receiver(env, tmp_path / "receiver.log") as receiver_url:
        statuses = post_concurrently(receiver_url, "rabbitmq")
    assert set(statuses.values()) == {202}
    keys = []
    with Connection(url) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get("s3thumbs", no_ack=True)) is not None:
            keys.append(json.loads(message.body)[0][1])
    assert sorted(keys) == sorted(statuses)
