"""Broker outage: the receiver answers 503 quickly (never hangs, never 2xx) while the broker is down,
and once it is back the same event is accepted and processed, with no restart of receiver or worker.

Every test here stops or cuts off a broker of its own (from the factories), never a shared one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from s3thumbs.receiver import PUBLISH_TIMEOUT, READY_TIMEOUT
from tests.support import images
from tests.support.buckets import fresh_bucket, s3_client, thumbnails_written, upload
from tests.support.faults import TcpLink
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env, wait_for, worker

TOKEN = "outage-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The receiver's whole answer while the broker is away: 503 by its publish deadline at the latest, and
# /readyz by its own deadline; 3 s more to deliver either.
MAX_503_SECONDS = PUBLISH_TIMEOUT + 3
MAX_NOT_READY_SECONDS = READY_TIMEOUT + 3
# An answer that has not come by then never will: MinIO and SNS would have given up on it.
HTTP_TIMEOUT = 30


@pytest.fixture
def outage_bucket(moto_server_url):
    return fresh_bucket(s3_client(moto_server_url), "outage")


def uploaded(s3, bucket: str, key: str) -> dict:
    """Put an image and return the MinIO event for it."""
    return minio_webhook(bucket, key, upload(s3, bucket, key, images.jpeg(1200, 800)))


def elapsed(call: Callable[[], Any]) -> tuple[Any, float]:
    """Call and time it."""
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/events", json=body, headers=AUTH, timeout=HTTP_TIMEOUT)


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=HTTP_TIMEOUT)


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.slow)])
def outage_broker(request, redis_factory):
    """(a private broker the test may stop and start, result backend URL)."""
    if request.param == "redis":
        server = redis_factory(appendonly=True)
        return server, server.url_for(1)
    node = request.getfixturevalue("rabbitmq_factory")()
    return node, redis_factory().url_for(1)


def test_receiver_answers_503_while_the_broker_is_down_and_recovers_without_restarts(
    outage_broker, moto_server_url, outage_bucket, tmp_path
):
    broker, backend = outage_broker
    env = s3thumbs_env(broker_url=broker.url, result_backend=backend, s3_endpoint_url=moto_server_url, auth_token=TOKEN)
    s3 = s3_client(moto_server_url)
    before = uploaded(s3, outage_bucket, "before.jpg")
    during = uploaded(s3, outage_bucket, "during.jpg")
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log") as service:
        assert post(url, before).status_code == 202
        wait_for(lambda: thumbnails_written(s3, outage_bucket, "before.jpg"), 30, "thumbnails before the outage")

        broker.stop()
        response, seconds = elapsed(lambda: post(url, during))
        print(f"POST /events while the broker is down: {response.status_code} in {seconds:.2f} s")
        assert response.status_code == 503, response.text
        assert seconds < MAX_503_SECONDS
        probe, probe_seconds = elapsed(lambda: ready(url))
        print(f"GET /readyz while the broker is down: {probe.status_code} in {probe_seconds:.2f} s")
        assert probe.status_code == 503
        assert probe_seconds < MAX_NOT_READY_SECONDS
        assert not thumbnails_written(s3, outage_bucket, "during.jpg")

        broker.start()
        assert ready(url).status_code == 200
        response, seconds = elapsed(lambda: post(url, during))
        print(f"POST /events once the broker is back: {response.status_code} in {seconds:.2f} s")
        assert response.status_code == 202, response.text
        _, recovery = elapsed(
            lambda: wait_for(
                lambda: thumbnails_written(s3, outage_bucket, "during.jpg"),
                90,
                "thumbnails after the outage, from the worker that ran all along",
                interval=0.2,
            )
        )
        print(f"thumbnails {recovery:.1f} s after the broker came back")
        assert service.process.poll() is None, "the worker must have lived through the outage"


@pytest.fixture(params=["redis", "rabbitmq"])
def silent_broker(request, redis_factory):
    """(a private broker behind a TcpLink, the broker URL through the link, result backend URL)."""
    if request.param == "redis":
        server = redis_factory(appendonly=True)
        with TcpLink(server.host, server.port) as link:
            yield link, f"redis://127.0.0.1:{link.port}/0", server.url_for(1)
        return
    node = request.getfixturevalue("rabbitmq_factory")()
    with TcpLink(node.host, node.port) as link:
        yield link, f"amqp://guest:guest@127.0.0.1:{link.port}//", redis_factory().url_for(1)


@pytest.mark.slow
def test_receiver_answers_503_when_the_broker_stops_answering(silent_broker, moto_server_url, outage_bucket, tmp_path):
    """A broker that vanishes without closing the connection (network partition, failover, NAT
    timeout): publish and probe must still give up within the budget rather than wait for ever."""
    link, broker_url, backend = silent_broker
    env = s3thumbs_env(broker_url=broker_url, result_backend=backend, s3_endpoint_url=moto_server_url, auth_token=TOKEN)
    s3 = s3_client(moto_server_url)
    before = uploaded(s3, outage_bucket, "before.jpg")
    during = uploaded(s3, outage_bucket, "during.jpg")
    patience = 2 * MAX_503_SECONDS
    with receiver(env, tmp_path / "receiver.log") as url:
        assert post(url, before).status_code == 202  # the receiver now holds a connection to the broker

        link.silence()
        try:
            response, seconds = elapsed(
                lambda: httpx.post(f"{url}/events", json=during, headers=AUTH, timeout=patience)
            )
        except httpx.TimeoutException:
            pytest.fail(
                f"POST /events got no answer in {patience} s from a receiver whose broker went silent "
                f"(expected 503 within {MAX_503_SECONDS} s)"
            )
        print(f"POST /events while the broker is silent: {response.status_code} in {seconds:.2f} s")
        assert response.status_code == 503, response.text
        assert seconds < MAX_503_SECONDS
        try:
            probe, probe_seconds = elapsed(lambda: httpx.get(f"{url}/readyz", timeout=patience))
        except httpx.TimeoutException:
            pytest.fail(f"GET /readyz got no answer in {patience} s from a receiver whose broker went silent")
        print(f"GET /readyz while the broker is silent: {probe.status_code} in {probe_seconds:.2f} s")
        assert probe.status_code == 503
        assert probe_seconds < MAX_NOT_READY_SECONDS

        link.restore()
        wait_for(lambda: ready(url).status_code == 200, 30, "/readyz once the broker answers again")
        assert post(url, during).status_code == 202
