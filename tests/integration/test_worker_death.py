"""Worker death: a worker SIGKILLed as a whole (main process and pool, as a node or pod dies) in the
middle of rendering loses nothing: a new worker completes the task.

RabbitMQ requeues the unacknowledged delivery as soon as the dead worker's connection closes; Redis
keeps it in the ``unacked`` hash until the visibility timeout has passed and a running worker's
restore sweep (every ``unacked_restore_interval`` = 10 s, throttle 1) puts it back on the list.

The worker reads S3 through ``FaultProxy`` (passing everything): the end of the source's GET marks
"rendering has started", and the absence of any thumbnail PUT before the kill proves it landed
before the task wrote anything.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from kombu import Connection
from PIL import Image

from s3thumbs.events import ObjectEvent
from s3thumbs.failures import FAILED
from s3thumbs.messages import QUEUE
from s3thumbs.redisbackend import RECORD_PREFIX
from tests.support.buckets import SIZES, fresh_bucket, object_exists, s3_client
from tests.support.memory import group_members
from tests.support.processes import group_alive, run_s3thumbs, s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import empty_rabbitmq

pytestmark = pytest.mark.slow

TASK_TIME_LIMIT = 8  # soft limit 6.4 s: a render takes about 2 s here
MAX_RETRIES = 2  # longest countdown 2 s, so the visibility timeout must exceed 8 + 2 s
VISIBILITY_TIMEOUT = 12
RESTORE_SWEEP = 10  # kombu's unacked_restore_interval (default) × unacked_restore_throttle (1)
# How late a delivery the broker has let go may be logged by the worker that takes it: a timer's lateness
# and one fetch, however long the worker took to start (every bound is counted from what it logged).
DELIVERY_SLACK = 1.0
# The unacked timestamp is taken a moment before the receipt is logged (lines carry milliseconds).
LOG_SLACK = 0.5
WORKER_START = 60  # how long a worker may take to start consuming before the test gives up on it
BUSY_SAMPLE = 0.4  # how long the pool process's CPU use is watched before the kill


@pytest.fixture(scope="session")
def noise_jpeg_path(tmp_path_factory) -> Path:
    """A progressive JPEG of 58.5 MP of noise (~48 MB): decoding it takes a couple of seconds even
    with draft, as every coefficient must be entropy-decoded. Made once per session."""
    path = tmp_path_factory.mktemp("big") / "noise.jpg"
    width, height = 9000, 6500
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    image.save(path, "JPEG", quality=90, progressive=True)
    return path


@pytest.fixture(params=["redis", "rabbitmq"])
def redelivering_brokers(request, redis_factory):
    """(kind, broker URL, result backend URL, Redis broker or None); the s3thumbs queue empty."""
    if request.param == "redis":
        server = redis_factory()
        return "redis", server.url_for(0), server.url_for(1), server
    url = empty_rabbitmq(request.getfixturevalue("rabbitmq_server").url, QUEUE)
    return "rabbitmq", url, redis_factory().url_for(1), None


def ready_on_rabbitmq(url: str) -> int:
    with Connection(url) as connection:
        _, ready, _ = connection.default_channel.queue_declare("s3thumbs", passive=True)
        return int(ready)


def cpu_seconds_of_children(pgid: int) -> float:
    """CPU time (user + system) used so far by the processes of group ``pgid`` other than its leader."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, … utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def test_a_task_whose_worker_is_killed_mid_render_is_completed_by_a_new_worker(
    redelivering_brokers, fault_proxy, moto_server_url, noise_jpeg_path, tmp_path
):
    kind, broker_url, backend_url, redis_broker = redelivering_brokers
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "death")
    key = "huge/noise.jpg"
    source = f"/{bucket}/{key}"
    with noise_jpeg_path.open("rb") as body:
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg")["ETag"].strip('"')
    env = s3thumbs_env(
        broker_url=broker_url,
        result_backend=backend_url,
        s3_endpoint_url=fault_proxy.url,
        task_time_limit=str(TASK_TIME_LIMIT),
        max_retries=str(MAX_RETRIES),
        visibility_timeout=str(VISIBILITY_TIMEOUT),
    )
    [task_id] = publish_events(broker_url, [ObjectEvent("created", bucket, key, "ObjectCreated:Put", etag=etag)])
    received = f"Task s3thumbs.thumbnail[{task_id}] received"
    with Results(backend_url) as results:
        with worker(env, tmp_path / "worker-1.log") as first:
            downloaded = wait_for(
                lambda: fault_proxy.exchanges("GET", source), 60, "the first worker to read the source"
            )
            cpu_before = cpu_seconds_of_children(first.process.pid)
            time.sleep(BUSY_SAMPLE)
            busy = (cpu_seconds_of_children(first.process.pid) - cpu_before) / BUSY_SAMPLE
            os.killpg(first.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            first.process.wait(10)
            wait_for(lambda: not group_alive(first.process.pid), 10, "every process of the first worker to die")
        render_started = downloaded[0].ended
        assert not [e for e in fault_proxy.exchanges("PUT") if e.path.startswith(f"/{bucket}/")], (
            "the first worker wrote thumbnails before it was killed: the kill did not land mid-render"
        )
        assert results.of(task_id).state not in ("SUCCESS", "FAILURE")
        assert busy >= 0.3, f"the pool process used {busy:.0%} of a CPU just before the kill: not rendering"

        if kind == "redis":  # parked in the unacked hash, not on the list
            with redis_broker.client(0) as client:
                assert client.llen("s3thumbs") == 0
                assert client.hlen("unacked") == 1
        else:  # back on the queue at once
            wait_for(lambda: ready_on_rabbitmq(broker_url) == 1, 5, "RabbitMQ to requeue the delivery")

        with worker(env, tmp_path / "worker-2.log") as second:
            result = results.wait_ready(task_id, VISIBILITY_TIMEOUT + RESTORE_SWEEP + WORKER_START)
            assert result.state == "SUCCESS", result.result
            assert result.result["status"] == "written"
            for size in SIZES:
                assert object_exists(s3, bucket, f"thumbnails/{size}/{key}"), size
            assert received in second.log()
            if kind == "redis":

                def settled() -> bool:
                    with redis_broker.client(0) as client:
                        return client.llen("s3thumbs") == 0 and client.hlen("unacked") == 0

                wait_for(settled, 10, "LLEN s3thumbs and HLEN unacked to be 0")
            else:
                wait_for(lambda: ready_on_rabbitmq(broker_url) == 0, 10, "the RabbitMQ queue to be empty")

    gets = fault_proxy.exchanges("GET", source)
    assert len(gets) == 2, "one read by the killed worker, one by the new one"
    puts = [e for e in fault_proxy.exchanges("PUT") if e.path.startswith(f"/{bucket}/")]
    render_window = min(e.started for e in puts) - gets[1].ended
    # When each worker logged taking the task, and when the new one was ready to: the bounds below are
    # counted from these, so a worker slow to start (a loaded machine) moves them rather than fails them.
    first_received, second_ready, redelivered = (
        first.logged_at(received),
        second.logged_at(" ready."),
        second.logged_at(received),
    )
    print(
        f"{kind}: killed {killed - render_started:.2f} s into rendering (a render takes {render_window:.2f} s) "
        f"with the pool process at {busy:.0%} CPU; redelivered {redelivered - first_received:.1f} s after the "
        f"first delivery, {redelivered - second_ready:.1f} s after the new worker was ready"
    )
    assert killed - render_started < render_window, "the kill came after rendering would have ended"
    if kind == "redis":
        # Not before the visibility timeout has passed since the first delivery, and at the latest by the
        # first restore sweep of the new worker after that (it sweeps as it starts, then every 10 s).
        assert redelivered - first_received >= VISIBILITY_TIMEOUT - LOG_SLACK
        due = max(first_received + VISIBILITY_TIMEOUT, second_ready)
        assert redelivered - due <= RESTORE_SWEEP + DELIVERY_SLACK
    else:
        # Already back on the queue: the new worker takes it as soon as it consumes.
        assert redelivered - second_ready <= DELIVERY_SLACK


def pool_processes(pgid: int) -> list[int]:
    """The worker's pool processes: every member of its group but the main process."""
    return [pid for pid in group_members(pgid) if pid != pgid]


def rendering(pgid: int) -> bool:
    """True when the pool processes of the worker ``pgid`` keep a CPU at least a third busy."""
    before = cpu_seconds_of_children(pgid)
    time.sleep(BUSY_SAMPLE)
    return (cpu_seconds_of_children(pgid) - before) / BUSY_SAMPLE >= 0.3


def test_a_task_whose_pool_process_dies_every_time_fails_for_good_after_bounded_tries(
    moto_server_url, noise_jpeg_path, redis_factory, tmp_path
):
    """An upload that kills the process rendering it (the kernel's OOM killer, a segfault) is tried
    1 + MAX_RETRIES times, then ends FAILED for good, with a reason saying so, a dead letter, a failure
    marker (backfill leaves it alone) and a "failed" status: it is never redelivered for ever."""
    server = redis_factory()
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "poison")
    key = "poison/noise.jpg"
    with noise_jpeg_path.open("rb") as body:
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        s3_endpoint_url=moto_server_url,
        task_time_limit=str(TASK_TIME_LIMIT),
        max_retries=str(MAX_RETRIES),
        visibility_timeout=str(VISIBILITY_TIMEOUT),
    )
    [task_id] = publish_events(server.url_for(0), [ObjectEvent("created", bucket, key, "test", etag=etag)])
    received = f"Task s3thumbs.thumbnail[{task_id}] received"
    with Results(server.url_for(1)) as results, worker(env, tmp_path / "worker.log") as service:
        for attempt in range(1, 2 + MAX_RETRIES):
            service.wait_log(received, timeout=WORKER_START, count=attempt)
            # A retry waits its countdown first: kill the pool process once it is busy with the render.
            wait_for(lambda: rendering(service.process.pid), 30, f"try {attempt} to start rendering")
            for pid in pool_processes(service.process.pid):
                os.kill(pid, signal.SIGKILL)
        result = results.wait_ready(task_id, 60)
        service.wait_log(f"s3://{bucket}/{key}: dead letter recorded")
        log = service.log()

    assert result.state == "FAILURE"
    assert "WorkerLostError" in repr(result.result)
    assert log.count(received) == 1 + MAX_RETRIES, "tried once, then retried exactly MAX_RETRIES times"
    with server.client(1) as backend:
        marker = json.loads(backend.hget(FAILED, f"{bucket}/{key}"))
        status = json.loads(backend.get(f"{RECORD_PREFIX}{bucket}/{key}"))
    assert marker["etag"] == etag
    assert "died" in marker["reason"]
    assert (status["status"], status["reason"]) == ("failed", marker["reason"])
    [letter] = [json.loads(line) for line in run_s3thumbs(env, "dead-letters", "list", "--json").stdout.splitlines()]
    assert (letter["bucket"], letter["key"], letter["exception"]) == (bucket, key, "WorkerLostError")
