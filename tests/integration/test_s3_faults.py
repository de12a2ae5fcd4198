"""S3 faults: transient ones are retried with backoff until they pass, lasting ones end the task after a
bounded number of attempts, permanent ones are never retried.

A real worker (prefork) talks to moto's server through ``FaultProxy``, which injects the faults and
records every request with its timestamps, so requests are counted where S3 would count them
(botocore's own retries included). Task runs are counted from the worker log: Celery logs
``Task s3thumbs.thumbnail[<id>] received`` for every delivery, the first and each retry.

Waits are never judged against a guess of how long a loaded machine takes: a countdown or delay is
read from what chose it (the worker's retry log line, botocore's debug log) and only checked to be
within its configured cap and honoured, i.e. not cut short.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
from botocore.exceptions import ClientError

from s3thumbs.events import ObjectEvent
from s3thumbs.storage import make_client
from tests.support import images
from tests.support.buckets import fresh_bucket, nothing_written, s3_client, thumbnails_written, upload
from tests.support.faults import (
    ACCESS_DENIED,
    CLOSE_BEFORE_RESPONSE,
    DROP_MID_BODY,
    INTERNAL_ERROR,
    NO_SUCH_KEY,
    PRECONDITION_FAILED,
    SLOW_DOWN,
    outcome_of,
)
from tests.support.processes import Service, s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import start_redis

MAX_RETRIES = 2  # so a task runs at most 3 times
BROKER_DB, BACKEND_DB = 0, 1
# Celery's eta and the proxy's clock may disagree by a few milliseconds.
CLOCK_SLACK = 0.05


def botocore_attempts() -> int:
    """Requests per S3 call, first one included, as the worker's client is configured."""
    return int(make_client("http://127.0.0.1:9").meta.config.retries["total_max_attempts"])


def task_countdown_cap(retry: int) -> int:
    """The most the n-th retry of a task may wait (Celery's retry_backoff=1, full jitter): 2**(n-1) s."""
    return 2 ** (retry - 1)


def botocore_delay_cap(retry: int) -> float:
    """The most botocore's n-th retry of a throttled call may wait (standard mode): 2**(n-1) s."""
    return float(2 ** (retry - 1))


@pytest.fixture(scope="module")
def faults_redis(tmp_path_factory):
    """A Redis of this module's own: broker and result backend of its worker."""
    server = start_redis(tmp_path_factory.mktemp("s3-faults-redis"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def faulty_s3_worker(faults_redis, fault_proxy, tmp_path_factory):
    """A worker whose S3 endpoint is the fault proxy; yields (worker service, results reader)."""
    env = s3thumbs_env(
        broker_url=faults_redis.url_for(BROKER_DB),
        result_backend=faults_redis.url_for(BACKEND_DB),
        s3_endpoint_url=fault_proxy.url,
        max_retries=str(MAX_RETRIES),
    )
    # I/O-bound tasks: enough processes that retries falling due together do not wait for each other
    log = tmp_path_factory.mktemp("s3-faults") / "worker.log"
    with worker(env, log, "--concurrency", "4") as service, Results(faults_redis.url_for(BACKEND_DB)) as results:
        yield service, results


@pytest.fixture
def moto_server_s3(moto_server_url):
    """An S3 client of moto's server itself, past the proxy: what the test sets up and checks."""
    return s3_client(moto_server_url)


@pytest.fixture
def faults_bucket(moto_server_s3, fault_proxy):
    """A fresh bucket; the proxy's rules are forgotten after the test."""
    yield fresh_bucket(moto_server_s3, "faults")
    fault_proxy.reset()


def upload_photo(s3, bucket: str, key: str) -> str:
    return upload(s3, bucket, key, images.jpeg(1200, 800))


def publish(redis_server, bucket: str, key: str, etag: str) -> str:
    """Ask the worker for the thumbnails of this version of the source; the task's id."""
    event = ObjectEvent("created", bucket, key, "ObjectCreated:Put", etag=etag)
    [task_id] = publish_events(redis_server.url_for(BROKER_DB), [event])
    return task_id


def runs(service: Service, task_id: str) -> int:
    """How many times the worker received this task (first delivery and retries)."""
    return service.log().count(f"s3thumbs.thumbnail[{task_id}] received")


def retry_countdowns(service: Service, bucket: str, key: str) -> dict[int, float]:
    """The countdown the worker chose for each retry of this source, by retry number (from 1), from the
    line it logs for every retry: ``s3://BUCKET/KEY: retry N of M in C s: <reason>``."""
    line = re.compile(
        rf"s3://{re.escape(bucket)}/{re.escape(key)}: retry (\d+) of {MAX_RETRIES} in (\d+(?:\.\d+)?) s: "
    )
    return {int(n): float(seconds) for n, seconds in line.findall(service.log())}


def settled(redis_server) -> bool:
    """The broker holds nothing: no task waiting and none delivered but unacknowledged."""
    with redis_server.client(BROKER_DB) as client:
        return client.llen("s3thumbs") == 0 and client.hlen("unacked") == 0


def test_error_replies_and_closed_connections_are_retried_until_every_thumbnail_appears(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/flaky.jpg"
    source = f"/{bucket}/{key}"
    etag = upload_photo(moto_server_s3, bucket, key)
    attempts = botocore_attempts()
    # 1st run: every one of botocore's attempts fails (503 SlowDown, 500 InternalError, connections
    # closed before any answer), so the task retries; 2nd run: one more 503, retried by botocore,
    # then the real object. One thumbnail's PUT fails once too.
    first_run = [SLOW_DOWN, INTERNAL_ERROR] + [CLOSE_BEFORE_RESPONSE] * (attempts - 2)
    fault_proxy.inject("GET", source, *first_run, SLOW_DOWN)
    fault_proxy.inject("PUT", f"/{bucket}/thumbnails/512x512/{key}", INTERNAL_ERROR)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 60)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "written"
    assert thumbnails_written(moto_server_s3, bucket, key)
    outcomes = [e.outcome for e in fault_proxy.exchanges("GET", source)]
    assert outcomes == [outcome_of(fault) for fault in first_run] + ["SlowDown", "200"]
    assert runs(service, task_id) == 2, "the task must have run exactly twice"
    assert [e.outcome for e in fault_proxy.exchanges("PUT", f"/{bucket}/thumbnails/512x512/{key}")] == [
        "InternalError",
        "200",
    ]
    wait_for(lambda: settled(faults_redis), 10, "the task to be acknowledged")


def test_a_body_cut_short_is_retried_until_every_thumbnail_appears(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    """The connection drops after the headers and half the body: botocore has already returned the
    response, so only the task can retry it."""
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/cut.jpg"
    source = f"/{bucket}/{key}"
    etag = upload_photo(moto_server_s3, bucket, key)
    fault_proxy.inject("GET", source, DROP_MID_BODY)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 60)

    assert result.state == "SUCCESS", f"a body cut short must be retried, got {result.result!r}"
    assert result.result["status"] == "written"
    assert thumbnails_written(moto_server_s3, bucket, key)
    assert [e.outcome for e in fault_proxy.exchanges("GET", source)] == ["drop mid-body", "200"]
    assert runs(service, task_id) == 2
    wait_for(lambda: settled(faults_redis), 10, "the task to be acknowledged")


@pytest.mark.slow
def test_a_fault_that_outlasts_every_retry_fails_the_task_after_bounded_attempts(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    """Every run makes all of botocore's attempts, each after its backoff (up to 1 + 2 s per run; how
    botocore's delays are chosen is checked in the next test)."""
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/down.jpg"
    source = f"/{bucket}/{key}"
    etag = upload_photo(moto_server_s3, bucket, key)
    fault_proxy.inject("GET", source, forever=SLOW_DOWN)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 90)

    assert result.state == "FAILURE"
    assert "SlowDown" in repr(result.result)
    wait_for(lambda: settled(faults_redis), 10, "the failed task to be acknowledged")
    gets = fault_proxy.exchanges("GET", source)
    assert runs(service, task_id) == 1 + MAX_RETRIES
    assert len(gets) == (1 + MAX_RETRIES) * botocore_attempts()
    assert {e.outcome for e in gets} == {"SlowDown"}
    assert nothing_written(moto_server_s3, bucket)
    assert gets[-1].started - gets[0].started > 1.0, "every attempt within a second: no backoff at all"
    print(f"GETs at +s: {[round(e.started - gets[0].started, 2) for e in gets]}")
    time.sleep(task_countdown_cap(MAX_RETRIES) + 0.5)  # past the longest countdown: nothing more comes
    assert len(fault_proxy.exchanges("GET", source)) == len(gets)
    assert runs(service, task_id) == 1 + MAX_RETRIES


def test_the_workers_s3_client_backs_off_within_a_call_with_full_jitter(
    moto_server_s3, fault_proxy, faults_bucket, caplog
):
    """The worker's client (``make_client``), in this process so that botocore's chosen delays can be
    read from its debug log: each within its cap, each honoured before the next attempt."""
    key = "photos/throttled.jpg"
    source = f"/{faults_bucket}/{key}"
    upload_photo(moto_server_s3, faults_bucket, key)
    fault_proxy.inject("GET", source, forever=SLOW_DOWN)
    client = make_client(fault_proxy.url)

    with caplog.at_level(logging.DEBUG, logger="botocore.retries.standard"), pytest.raises(ClientError) as raised:
        client.get_object(Bucket=faults_bucket, Key=key)

    assert raised.value.response["Error"]["Code"] == "SlowDown"
    chosen = [
        float(record.getMessage().rsplit(" ", 1)[1])
        for record in caplog.records
        if record.getMessage().startswith("Retry needed, retrying request after delay of: ")
    ]
    # The proxy records an exchange just after its answer is out: the last may not be recorded yet.
    wait_for(
        lambda: len(fault_proxy.exchanges("GET", source)) >= botocore_attempts(), 10, "the proxy to record every GET"
    )
    gets = fault_proxy.exchanges("GET", source)
    assert len(gets) == botocore_attempts()
    assert len(chosen) == len(gets) - 1
    for retry, (delay, failed, next_attempt) in enumerate(zip(chosen, gets, gets[1:], strict=False), start=1):
        assert 0 <= delay <= botocore_delay_cap(retry), f"botocore retry {retry} chose {delay:.2f} s"
        waited = next_attempt.started - failed.ended
        assert waited >= delay - CLOCK_SLACK, f"botocore retry {retry} waited {waited:.2f} s of its {delay:.2f} s"
    print(f"botocore delays: {[round(d, 2) for d in chosen]}")


def test_retries_back_off_exponentially_with_full_jitter(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    """Countdowns are uniform in [0, 2**(n-1)] whole seconds for the n-th retry, so they cannot be
    pinned per task: six tasks give twelve of them. Each is read from the worker's retry log line and
    must be within its cap and honoured (the next run starts no sooner); together they can be all zero
    (no backoff) or all at their caps (no jitter) only with probability 6**-6 each."""
    service, results = faulty_s3_worker
    bucket = faults_bucket
    keys = [f"photos/changing-{n}.jpg" for n in range(6)]
    etags = {key: upload_photo(moto_server_s3, bucket, key) for key in keys}
    # A 412 (a precondition about the source's version failed: it changed) is retried by the task
    # and not by botocore: one GET per run, and the next request for the source starts the next run.
    fault_proxy.inject(
        "GET", re.compile(re.escape(f"/{bucket}/photos/changing-") + r"\d\.jpg"), forever=PRECONDITION_FAILED
    )

    task_ids = {key: publish(faults_redis, bucket, key, etags[key]) for key in keys}
    for task_id in task_ids.values():
        result = results.wait_ready(task_id, 60)
        assert result.state == "FAILURE"
        assert "changed" in str(result.result)

    countdowns = []
    for key in keys:
        seen = fault_proxy.exchanges(path=f"/{bucket}/{key}")
        gets = [i for i, e in enumerate(seen) if e.method == "GET"]
        assert len(gets) == runs(service, task_ids[key]) == 1 + MAX_RETRIES, key
        chosen = retry_countdowns(service, bucket, key)
        assert sorted(chosen) == list(range(1, MAX_RETRIES + 1)), f"{key}: retries logged {sorted(chosen)}"
        for retry, i in enumerate(gets[:-1], start=1):
            countdown, cap = chosen[retry], task_countdown_cap(retry)
            assert 0 <= countdown <= cap, f"{key}: retry {retry} chose {countdown} s, its cap is {cap} s"
            waited = seen[i + 1].started - seen[i].ended
            assert waited >= countdown - CLOCK_SLACK, (
                f"{key}: retry {retry} ran {waited:.2f} s after the failure, before its countdown of {countdown} s"
            )
            countdowns.append((retry, countdown))
    print(f"countdowns (retry, seconds): {countdowns}")
    assert any(seconds > 0 for _, seconds in countdowns), "every retry ran at once: no backoff"
    assert not all(seconds == task_countdown_cap(retry) for retry, seconds in countdowns), (
        "every countdown at its cap: no jitter"
    )


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_access_denied_fails_the_task_once_without_retry(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis, method
):
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/secret.jpg"
    source = f"/{bucket}/{key}"
    etag = upload_photo(moto_server_s3, bucket, key)
    fault_proxy.inject(method, source, forever=ACCESS_DENIED)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "FAILURE"
    assert ("AccessDenied" if method == "GET" else "403") in str(result.result)
    wait_for(lambda: settled(faults_redis), 10, "the failed task to be acknowledged")
    assert len(fault_proxy.exchanges(method, source)) == 1, "403 must be retried neither by botocore nor by the task"
    assert runs(service, task_id) == 1
    # The GET comes first; the source's HEAD only once the thumbnails are written, to check it did not
    # change meanwhile (on AWS both are allowed by s3:GetObject, so a store refuses neither or both).
    assert nothing_written(moto_server_s3, bucket) == (method == "GET")


def test_a_source_deleted_before_the_task_runs_ends_quietly(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/gone.jpg"
    etag = upload_photo(moto_server_s3, bucket, key)
    moto_server_s3.delete_object(Bucket=bucket, Key=key)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "gone"
    assert result.result["thumbnails"] == []
    wait_for(lambda: settled(faults_redis), 10, "the task to be acknowledged")
    assert runs(service, task_id) == 1
    assert len(fault_proxy.exchanges("GET", f"/{bucket}/{key}")) == 1  # its 404 is the whole answer
    assert fault_proxy.exchanges("HEAD", f"/{bucket}/{key}") == []
    assert nothing_written(moto_server_s3, bucket)


def test_a_source_that_vanishes_between_look_and_read_ends_quietly(
    faulty_s3_worker, fault_proxy, moto_server_s3, faults_bucket, faults_redis
):
    service, results = faulty_s3_worker
    bucket, key = faults_bucket, "photos/vanishing.jpg"
    source = f"/{bucket}/{key}"
    etag = upload_photo(moto_server_s3, bucket, key)
    fault_proxy.inject("GET", source, forever=NO_SUCH_KEY)

    task_id = publish(faults_redis, bucket, key, etag)
    result = results.wait_ready(task_id, 30)

    assert result.state == "SUCCESS", result.result
    assert result.result["status"] == "gone"
    wait_for(lambda: settled(faults_redis), 10, "the task to be acknowledged")
    assert runs(service, task_id) == 1
    assert len(fault_proxy.exchanges("GET", source)) == 1
    assert not [e for e in fault_proxy.exchanges("PUT") if e.path.startswith(f"/{bucket}/")]
    assert nothing_written(moto_server_s3, bucket)
