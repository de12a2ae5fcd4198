"""S3 faults: transient ones are retried with backoff until they pass, lasting ones end the task after a
bounded number of attempts, permanent ones are never retried.

A real worker (prefork) talks to moto's server through ``FaultProxy``, which injects the faults and
records every request with its timestamps, so requests are counted where S3 would count them
(botocore's own retries included). Task runs are counted from the worker log: Celery logs
``Task s3thumbs.thumbnail[<id>] received`` for every delivery, the first and each retry.
"""

from __future__ import annotations

import io
import re
import time
import uuid

import pytest
from PIL import Image

from s3thumbs.storage import make_client
from tests.faults import (
    ACCESS_DENIED,
    CLOSE_BEFORE_RESPONSE,
    DROP_MID_BODY,
    INTERNAL_ERROR,
    NO_SUCH_KEY,
    PRECONDITION_FAILED,
    SLOW_DOWN,
    FaultProxy,
    Results,
    outcome_of,
    private_redis,
    send_thumbnail_task,
)
from tests.services import Service, object_exists, s3_client, s3thumbs_env, wait_for, worker

MAX_RETRIES = 2  # so a task runs at most 3 times
SIZES = ("128x128", "512x512", "1024x1024")
BROKER_DB, BACKEND_DB = 0, 1


def botocore_attempts() -> int:
    """Requests per S3 call, first one included, as the worker's client is configured."""
    return int(make_client("http://127.0.0.1:9").meta.config.retries["total_max_attempts"])


@pytest.fixture(scope="module")
def proxy(moto_endpoint):
    with FaultProxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with private_redis(tmp_path_factory.mktemp("s3-faults-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(broker, proxy, tmp_path_factory):
    """A worker whose S3 endpoint is the proxy; yields (worker service, results reader)."""
    env = s3thumbs_env(broker_url=broker.url_for(BROKER_DB), result_backend=broker.url_for(BACKEND_DB),
                       s3_endpoint_url=proxy.url, max_retries=str(MAX_RETRIES))
    results = Results(broker.url_for(BACKEND_DB))
    # I/O-bound tasks: enough processes that retries falling due together do not wait for each other
    with worker(env, tmp_path_factory.mktemp("s3-faults") / "worker.log", "--concurrency", "4") as service:
        yield service, results
    results.close()


@pytest.fixture
def bucket(moto_endpoint, proxy):
    name = f"faults-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    yield name
    proxy.reset()


@pytest.fixture
def s3(moto_endpoint):
    return s3_client(moto_endpoint)


def jpeg(width: int = 1200, height: int = 800) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((width, height)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(s3, bucket: str, key: str) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=jpeg(), ContentType="image/jpeg")["ETag"].strip('"')


def publish(broker, bucket: str, key: str, etag: str) -> str:
    return send_thumbnail_task(broker.url_for(BROKER_DB), bucket, key, etag)


def runs(service: Service, task_id: str) -> int:
    """How many times the worker received this task (first delivery and retries)."""
    return service.log().count(f"s3thumbs.thumbnail[{task_id}] received")


def thumbnails_written(s3, bucket: str, key: str) -> bool:
    return all(object_exists(s3, bucket, f"thumbnails/{size}/{key}")
               and "s3thumbs-settings" in s3.head_object(Bucket=bucket, Key=f"thumbnails/{size}/{key}")["Metadata"]
               for size in SIZES)


def nothing_written(s3, bucket: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix="thumbnails/")["KeyCount"] == 0


def settled(broker) -> bool:
    """The broker holds nothing: no task waiting and none delivered but unacknowledged."""
    with broker.client(BROKER_DB) as client:
        return client.llen("s3thumbs") == 0 and client.hlen("unacked") == 0


def test_error_replies_and_closed_connections_are_retried_until_every_thumbnail_appears(stack, proxy, s3, bucket,
                                                                                        broker):
    service, results = stack
    key = "photos/flaky.jpg"
    source = f"/{bucket}/{key}"
    etag = upload(s3, bucket, key)
    attempts = botocore_attempts()
    # 1st run: every one of botocore's attempts fails (503 SlowDown, 500 InternalError, connections
    # closed before any answer), so the task retries; 2nd run: one more 503, retried by botocore,
    # then the real object. One thumbnail's PUT fails once too.
    first_run = [SLOW_DOWN, INTERNAL_ERROR] + [CLOSE_BEFORE_RESPONSE] * (attempts - 2)
    proxy.inject("GET", source, *first_run, SLOW_DOWN)
    proxy.inject("PUT", f"/{bucket}/thumbnails/512x512/{key}", INTERNAL_ERROR)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 60)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "written"
    assert thumbnails_written(s3, bucket, key)
    outcomes = [e.outcome for e in proxy.exchanges("GET", source)]
    assert outcomes == [outcome_of(fault) for fault in first_run] + ["SlowDown", "200"]
    assert runs(service, task_id) == 2, "the task must have run exactly twice"
    assert [e.outcome for e in proxy.exchanges("PUT", f"/{bucket}/thumbnails/512x512/{key}")] == [
        "InternalError", "200"]
    wait_for(lambda: settled(broker), 10, "the task to be acknowledged")


def test_a_body_cut_short_is_retried_until_every_thumbnail_appears(stack, proxy, s3, bucket, broker):
    """The connection drops after the headers and half the body: botocore has already returned the
    response, so only the task can retry it."""
    service, results = stack
    key = "photos/cut.jpg"
    source = f"/{bucket}/{key}"
    etag = upload(s3, bucket, key)
    proxy.inject("GET", source, DROP_MID_BODY)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 60)

    assert result.state == "SUCCESS", f"a body cut short must be retried, got {result.result!r}"
    assert result.result["status"] == "written"
    assert thumbnails_written(s3, bucket, key)
    assert [e.outcome for e in proxy.exchanges("GET", source)] == ["drop mid-body", "200"]
    assert runs(service, task_id) == 2
    wait_for(lambda: settled(broker), 10, "the task to be acknowledged")


@pytest.mark.slow
def test_a_fault_that_outlasts_every_retry_fails_the_task_after_bounded_attempts(stack, proxy, s3, bucket, broker):
    """3 runs × botocore's 4 attempts, each with its backoff (up to 1 + 2 + 4 s per run): ~10-20 s."""
    service, results = stack
    key = "photos/down.jpg"
    source = f"/{bucket}/{key}"
    etag = upload(s3, bucket, key)
    proxy.inject("GET", source, forever=SLOW_DOWN)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 90)

    assert result.state == "FAILURE"
    assert "SlowDown" in repr(result.result)
    wait_for(lambda: settled(broker), 10, "the failed task to be acknowledged")
    gets = proxy.exchanges("GET", source)
    assert runs(service, task_id) == 1 + MAX_RETRIES
    assert len(gets) == (1 + MAX_RETRIES) * botocore_attempts()
    assert {e.outcome for e in gets} == {"SlowDown"}
    assert nothing_written(s3, bucket)
    # botocore backs off within a run: its n-th retry waits uniform [0, 2**(n-1)) s
    attempts = botocore_attempts()
    for run in range(1 + MAX_RETRIES):
        requests = gets[run * attempts:(run + 1) * attempts]
        for n, (failed, retried) in enumerate(zip(requests, requests[1:], strict=False), start=1):
            assert retried.started - failed.ended <= 2 ** (n - 1) + 0.5, f"run {run + 1}, botocore retry {n}"
    assert gets[-1].started - gets[0].started > 1.0, "every attempt within a second: no backoff at all"
    print(f"GETs at +s: {[round(e.started - gets[0].started, 2) for e in gets]}")
    time.sleep(2.5)  # longer than the longest countdown (2 s): nothing more comes once the task failed
    assert len(proxy.exchanges("GET", source)) == len(gets)
    assert runs(service, task_id) == 1 + MAX_RETRIES


def test_retries_back_off_exponentially_with_full_jitter(stack, proxy, s3, bucket, broker):
    """Countdowns are uniform in [0, 2**n] whole seconds (n = retries so far), so they cannot be
    pinned per task: six tasks give twelve of them, which must respect their caps, and can be all
    zero (no backoff) or all at their caps (no jitter) only with probability 6**-6 each."""
    service, results = stack
    keys = [f"photos/changing-{n}.jpg" for n in range(6)]
    etags = {key: upload(s3, bucket, key) for key in keys}
    # "The source changed while it was read" (412 to the GET's If-Match) is retried by the task and
    # not by botocore: one GET per run, and the next request for the source starts the next run, so
    # the gap between them is the countdown.
    proxy.inject("GET", re.compile(re.escape(f"/{bucket}/photos/changing-") + r"\d\.jpg"),
                 forever=PRECONDITION_FAILED)

    task_ids = {key: publish(broker, bucket, key, etags[key]) for key in keys}
    for task_id in task_ids.values():
        result = results.wait_ready(task_id, 60)
        assert result.state == "FAILURE"
        assert "changed" in str(result.result)

    countdowns = []
    for key in keys:
        seen = proxy.exchanges(path=f"/{bucket}/{key}")
        gets = [i for i, e in enumerate(seen) if e.method == "GET"]
        assert len(gets) == runs(service, task_ids[key]) == 1 + MAX_RETRIES, key
        for retry, i in enumerate(gets[:-1]):
            gap = seen[i + 1].started - seen[i].ended
            cap = 2 ** retry
            assert -0.05 <= gap <= cap + 0.75, f"{key}: retry {retry + 1} waited {gap:.2f} s, its cap is {cap} s"
            countdowns.append((retry, round(gap)))
    print(f"countdowns (retries so far, seconds): {countdowns}")
    assert any(seconds > 0 for _, seconds in countdowns), "every retry ran at once: no backoff"
    assert not all(seconds == 2 ** retry for retry, seconds in countdowns), "every countdown at its cap: no jitter"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_access_denied_fails_the_task_once_without_retry(stack, proxy, s3, bucket, broker, method):
    service, results = stack
    key = "photos/secret.jpg"
    source = f"/{bucket}/{key}"
    etag = upload(s3, bucket, key)
    proxy.inject(method, source, forever=ACCESS_DENIED)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "FAILURE"
    assert ("AccessDenied" if method == "GET" else "403") in str(result.result)
    wait_for(lambda: settled(broker), 10, "the failed task to be acknowledged")
    assert len(proxy.exchanges(method, source)) == 1, "403 must be retried neither by botocore nor by the task"
    assert runs(service, task_id) == 1
    assert nothing_written(s3, bucket)


def test_a_source_deleted_before_the_task_runs_ends_quietly(stack, proxy, s3, bucket, broker):
    service, results = stack
    key = "photos/gone.jpg"
    etag = upload(s3, bucket, key)
    s3.delete_object(Bucket=bucket, Key=key)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "gone"
    assert result.result["thumbnails"] == []
    wait_for(lambda: settled(broker), 10, "the task to be acknowledged")
    assert runs(service, task_id) == 1
    assert len(proxy.exchanges("HEAD", f"/{bucket}/{key}")) == 1
    assert proxy.exchanges("GET", f"/{bucket}/{key}") == []
    assert nothing_written(s3, bucket)


def test_a_source_that_vanishes_between_look_and_read_ends_quietly(stack, proxy, s3, bucket, broker):
    service, results = stack
    key = "photos/vanishing.jpg"
    source = f"/{bucket}/{key}"
    etag = upload(s3, bucket, key)
    proxy.inject("GET", source, forever=NO_SUCH_KEY)

    task_id = publish(broker, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "gone"
    wait_for(lambda: settled(broker), 10, "the task to be acknowledged")
    assert runs(service, task_id) == 1
    assert len(proxy.exchanges("GET", source)) == 1
    assert not [e for e in proxy.exchanges("PUT") if e.path.startswith(f"/{bucket}/")]
    assert nothing_written(s3, bucket)
