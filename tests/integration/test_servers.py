"""The server fixtures start real, isolated servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import kombu
import pytest

from tests.support.servers import RabbitMQNode, RabbitMQServer, RedisProcess, RedisServer


def test_redis_server_answers_ping(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        assert client.ping()
    if isinstance(redis_server, RedisProcess):
        assert redis_server.host == "127.0.0.1"
        assert redis_server.port != 6379
        assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"


def test_redis_url_for_selects_database(redis_server: RedisServer) -> None:
    key = f"s3thumbs-test-{uuid.uuid4().hex}"
    assert redis_server.url_for(3).endswith(f":{redis_server.port}/3")
    with redis_server.client(3) as db3, redis_server.client(4) as db4:
        try:
            db3.set(key, "x")
            assert db3.get(key) == b"x"
            assert db4.get(key) is None
        finally:
            db3.delete(key)


def test_rabbitmq_accepts_connections(rabbitmq_server: RabbitMQServer) -> None:
    with kombu.Connection(rabbitmq_server.url) as conn:
        conn.ensure_connection(max_retries=3)
        assert conn.connected
    if isinstance(rabbitmq_server, RabbitMQNode):
        assert rabbitmq_server.port != 5672
        assert rabbitmq_server.url == f"amqp://guest:guest@127.0.0.1:{rabbitmq_server.port}//"


def test_rabbitmq_publish_get_round_trip(rabbitmq_server: RabbitMQServer) -> None:
    name = f"s3thumbs-test-{uuid.uuid4().hex}"
    with kombu.Connection(rabbitmq_server.url) as conn:
        queue = conn.SimpleQueue(name, queue_opts={"durable": False}, exchange_opts={"durable": False})
        try:
            queue.put({"key": name})
            message = queue.get(timeout=10)
            message.ack()
            assert message.payload == {"key": name}
        finally:
            queue.close()
            conn.default_channel.queue_delete(name)
            conn.default_channel.exchange_delete(name)


def test_redis_aof_survives_kill_and_restart(redis_factory: Callable[..., RedisProcess]) -> None:
    server = redis_factory(appendonly=True)
    port = server.port
    with server.client() as client:
        client.rpush("items", "a", "b", "c")
    server.kill()
    assert not server.running
    assert not server.ping()

    server.start()
    assert server.port == port
    with server.client() as client:
        assert client.lrange("items", 0, -1) == [b"a", b"b", b"c"]
        client.rpush("items", "d")
    server.stop()
    assert not server.running

    server.start()
    with server.client() as client:
        assert client.llen("items") == 4


@pytest.mark.slow
def test_rabbitmq_node_keeps_durable_messages_across_restart(
    rabbitmq_factory: Callable[[], RabbitMQNode],
) -> None:
    node = rabbitmq_factory()
    name = f"s3thumbs-test-{uuid.uuid4().hex}"
    with kombu.Connection(node.url) as conn:
        exchange = kombu.Exchange(name, type="direct", durable=True)
        queue = kombu.Queue(name, exchange, routing_key=name, durable=True)
        with conn.Producer(exchange=exchange, routing_key=name) as producer:
            producer.publish({"key": name}, declare=[queue], delivery_mode=2)
    node.stop()
    assert not node.running

    node.start()
    with kombu.Connection(node.url) as conn:
        message = queue(conn.default_channel).get(no_ack=True)
        assert message is not None
        assert message.payload == {"key": name}
