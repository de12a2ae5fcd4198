"""Fixtures of the tests that run real processes and servers."""

from __future__ import annotations

import pytest
from PIL import Image

from s3thumbs.messages import DEAD_QUEUE, QUEUE
from tests.support.faults import FaultProxy
from tests.support.servers import empty_rabbitmq, empty_redis


@pytest.fixture(scope="session")
def slow_jpeg(tmp_path_factory) -> bytes:
    """A progressive 81 MP noise JPEG (64 MB): about two seconds to render on a 2-core machine."""
    path = tmp_path_factory.mktemp("images") / "slow.jpg"
    Image.effect_noise((9000, 9000), 60).convert("RGB").save(path, "JPEG", quality=95, progressive=True)
    return path.read_bytes()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_and_backend(request, redis_server) -> tuple[str, str]:
    """(broker URL, result backend URL), with empty task and dead-letter queues: Redis for both, or RabbitMQ
    with Redis results (the session's servers)."""
    urls = empty_redis(redis_server, 2, 3)
    if request.param == "redis":
        return urls["broker_url"], urls["result_backend"]
    rabbitmq_url = request.getfixturevalue("rabbitmq_server").url
    return empty_rabbitmq(rabbitmq_url, QUEUE, DEAD_QUEUE), urls["result_backend"]


@pytest.fixture(scope="module")
def fault_proxy(moto_server_url):
    """A ``FaultProxy`` in front of moto's server, shared by a module's tests."""
    with FaultProxy(moto_server_url) as proxy:
        yield proxy
