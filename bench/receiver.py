"""Receiver benchmark: events/s of the real receiver against a bare loop of Celery publishes.

In one run, for each broker: (a) a bare loop in one thread calling the project's Celery app
``send_task`` with the task name, queue, arguments and keyword arguments the receiver publishes
(and a short publish retry policy, as a publisher with a deadline needs), each publish timed; (b) the
receiver started as users start it (``s3thumbs receiver``, one process), fed MinIO-shaped webhook
POSTs, one record per request, distinct keys, by keep-alive HTTP clients running in a separate
process; (c) the same receiver fed by one serial sender, one connection, each POST sent only once
the last one was answered (as MinIO's webhook target and Ceph RGW's topic push deliver), each POST
timed. Every event each side published is then looked for on the broker, by key, and the queue is
emptied. With ``--wrk``, wrk then feeds the same receiver for a few seconds, with as many
connections as the clients and with one (the events it got a 2xx for are counted on the broker).
Prints Markdown. Run from the repository root, with no worker consuming the broker:

    python bench/receiver.py [--events N] [--serial-events N] [--passes 3] [--wrk] [--broker redis://...|amqp://...]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import math
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from celery import Celery
from machine import cpus  # bench/machine.py, beside this script

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.messages import QUEUE, THUMBNAIL_TASK

DEFAULT_BROKERS = ("redis://127.0.0.1:6379/1", "amqp://guest:guest@127.0.0.1:5672//")
TOKEN = "bench-token"
BUCKET = "uploads"
ETAG = "430f5a1ac9e7d5c3b8f7a4d0e2c6b1a9"
# The bare loop's publish: two tries, then an error (what a request with a deadline can afford).
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
# The goal: the receiver spends at most this many times the bare loop's CPU per event.
CPU_GOAL = 2.0


# --- the load generator (a child process) ------------------------------------------------------


def minio_body(key: str) -> bytes:
    """One MinIO webhook notification for one new object, as MinIO posts it."""
    encoded = key.replace("/", "%2F")
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": "2026-01-01T12:00:00.123Z",
        "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "172.18.0.1"},
        "responseElements": {
            "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
            "x-amz-request-id": "1876A0B2C3D4E5F6",
            "x-minio-deployment-id": "5b4a6e1f-0c1d-4b8e-9f2a-3c4d5e6f7a8b",
            "x-minio-origin-endpoint": "http://172.18.0.2:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "minioadmin"}, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {
                "key": encoded,
                "size": 6474,
                "eTag": ETAG,
                "contentType": "image/jpeg",
                "userMetadata": {"content-type": "image/jpeg"},
                "sequencer": "1876A0B2C3D4E5F6",
            },
        },
        "source": {
            "host": "172.18.0.1",
            "port": "",
            "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70 mc/RELEASE.2025-08-13T08-35-41Z",
        },
    }
    return json.dumps({"EventName": "s3:ObjectCreated:Put", "Key": f"{BUCKET}/{encoded}", "Records": [record]}).encode()


def keys_for(run: str, count: int) -> list[str]:
    return [f"bench/{run}/{i:07d}.jpg" for i in range(count)]


def http_request(port: int, key: str) -> bytes:
    body = minio_body(key)
    head = (
        f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: MinIO (linux; amd64) minio-go/v7\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(port: int, requests: list[tuple[int, bytes]], statuses: list[int]) -> None:
    """One keep-alive connection sending its requests one after another, each after the last answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, request in requests:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            statuses[index] = int(lines[0].split(b" ", 2)[1])
    finally:
        writer.close()


async def _load(port: int, requests: list[bytes], clients: int) -> tuple[list[int], float]:
    statuses = [0] * len(requests)
    shares: list[list[tuple[int, bytes]]] = [[] for _ in range(clients)]
    for index, request in enumerate(requests):
        shares[index % clients].append((index, request))
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, share, statuses) for share in shares))
    return statuses, time.perf_counter() - started


def load_child(port: int, run: str, count: int, clients: int) -> None:
    """POST ``count`` events from ``clients`` connections; print statuses, wall and CPU seconds as JSON."""
    requests = [http_request(port, key) for key in keys_for(run, count)]
    print("ready", flush=True)
    sys.stdin.readline()  # the parent samples the receiver's CPU clock, then says go
    cpu = time.process_time()
    statuses, seconds = asyncio.run(_load(port, requests, clients))
    print(json.dumps({"statuses": statuses, "seconds": seconds, "cpu": time.process_time() - cpu}))


def read_response(stream: BinaryIO) -> int:
    """Read one HTTP/1.1 response with a Content-Length from ``stream``; its status."""
    status = int(stream.readline().split(b" ", 2)[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    stream.read(length)
    return status


def serial_child(port: int, run: str, count: int) -> None:
    """POST ``count`` events one at a time on one connection, each once the last was answered.

    Prints statuses, each POST's latency (µs, from the first byte sent to the last byte of the
    answer read), wall and CPU seconds as JSON. A blocking socket: nothing else runs in this process.
    """
    requests = [http_request(port, key) for key in keys_for(run, count)]
    statuses = [0] * count
    latencies = [0.0] * count
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        print("ready", flush=True)
        sys.stdin.readline()
        cpu = time.process_time()
        clock = time.perf_counter_ns
        started = clock()
        for index, request in enumerate(requests):
            sent = clock()
            sock.sendall(request)
            statuses[index] = read_response(stream)
            latencies[index] = (clock() - sent) / 1e3
        seconds = (clock() - started) / 1e9
        cpu = time.process_time() - cpu
    print(json.dumps({"statuses": statuses, "latencies": latencies, "seconds": seconds, "cpu": cpu}))


NULL_RESPONSE = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def _null_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.partition(b":")[2])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(NULL_RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def null_server(port: int) -> None:
    """An HTTP server that answers every request at once: the load generator's own ceiling."""

    async def serve() -> None:
        server = await asyncio.start_server(_null_connection, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# --- the receiver under test -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Receiver:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Receiver]:
    """A server subprocess, once it answers GET /healthz on ``port``."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[2:4]} exited {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 2"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{command[2:4]} did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield Receiver(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def receiver(broker: str, directory: Path) -> contextlib.AbstractContextManager[Receiver]:
    """``s3thumbs receiver`` on a free loopback port, as a user starts it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3THUMBS_")}
    env.update(S3THUMBS_BROKER_URL=broker, S3THUMBS_RESULT_BACKEND="", S3THUMBS_AUTH_TOKEN=TOKEN)
    return serving(
        [sys.executable, "-m", "s3thumbs", "receiver", "--host", "127.0.0.1", "--port", str(port)],
        env,
        port,
        directory / "receiver.log",
    )


@contextlib.contextmanager
def null_target() -> Iterator[Receiver]:
    """A server that answers every request at once, in a process of its own."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="s3thumbs-bench-") as tmp,
        serving(
            [sys.executable, __file__, "--null-server", str(port)], dict(os.environ), port, Path(tmp) / "null.log"
        ) as target,
    ):
        yield target


def load_generator_ceiling(events: int, serial_events: int, clients: int) -> tuple[Load, Serial]:
    """Both load generators against a server that answers every request at once: their own ceilings."""
    with null_target() as target:
        post_events(target, "warm-up", min(500, events), clients)
        load = post_events(target, "ceiling", events, clients)[0]
        post_serial(target, "warm-up", min(500, serial_events))
        return load, post_serial(target, "ceiling-serial", serial_events)[0]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``ordered`` (sorted), 0 < q <= 1."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


class Timed:
    """Something timed per event: its rate (events/s) and each event's latency (ms, sorted)."""

    rate: float
    latencies: list[float]

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q)

    def summary(self) -> str:
        return (
            f"p50 {self.ms(0.5):.2f} ms, p90 {self.ms(0.9):.2f}, p99 {self.ms(0.99):.2f}, "
            f"max {self.ms(1):.2f}; {self.rate:,.0f}/s"
        )


@dataclass
class Load:
    accepted: int
    refused: dict[int, int]
    rate: float
    client_cpu: float  # load generator CPU seconds per wall second
    receiver_cpu: float  # receiver CPU seconds per wall second

    @property
    def cpu_per_event(self) -> float:
        """Receiver CPU µs per accepted event."""
        return self.receiver_cpu / self.rate * 1e6 if self.rate else float("nan")

    def refusals(self) -> str:
        return "".join(f", {count}× {status}" for status, count in sorted(self.refused.items()))


@dataclass
class Serial(Load, Timed):
    """A serial sender's run: a Load, and the latency of each request (ms, sorted)."""

    latencies: list[float]


def _run_child(target: Receiver, arguments: list[str]) -> tuple[dict[str, Any], float]:
    """Run this script as a load generator child; its JSON result, and the target's CPU seconds meanwhile."""
    child = subprocess.Popen(
        [sys.executable, __file__, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("the load generator failed to start")
    cpu = _cpu_seconds(target.process.pid)
    output, _ = child.communicate("go\n")
    target_cpu = _cpu_seconds(target.process.pid) - cpu
    if child.returncode:
        raise SystemExit(f"the load generator failed ({child.returncode})")
    result: dict[str, Any] = json.loads(output)
    return result, target_cpu


def _outcome(run: str, statuses: list[int]) -> tuple[list[str], dict[int, int]]:
    """The keys that got a 2xx, and the count of each other status."""
    keys = keys_for(run, len(statuses))
    accepted = [key for key, status in zip(keys, statuses, strict=True) if 200 <= status < 300]
    refused: dict[int, int] = {}
    for status in statuses:
        if not 200 <= status < 300:
            refused[status] = refused.get(status, 0) + 1
    return accepted, refused


def post_events(target: Receiver, run: str, count: int, clients: int) -> tuple[Load, list[str]]:
    """Feed ``count`` events from a separate process; the load, and the keys that got a 2xx."""
    result, target_cpu = _run_child(target, ["--load-child", str(target.port), run, str(count), str(clients)])
    accepted, refused = _outcome(run, result["statuses"])
    seconds = result["seconds"]
    return Load(
        len(accepted), refused, len(accepted) / seconds, result["cpu"] / seconds, target_cpu / seconds
    ), accepted


def post_serial(target: Receiver, run: str, count: int) -> tuple[Serial, list[str]]:
    """Feed ``count`` events one at a time from one connection in a separate process."""
    result, target_cpu = _run_child(target, ["--serial-child", str(target.port), run, str(count)])
    accepted, refused = _outcome(run, result["statuses"])
    seconds = result["seconds"]
    latencies = sorted(us / 1e3 for us in result["latencies"])
    serial = Serial(
        len(accepted), refused, len(accepted) / seconds, result["cpu"] / seconds, target_cpu / seconds, latencies
    )
    return serial, accepted


# --- wrk, optionally (--wrk) -------------------------------------------------------------------

WRK_SCRIPT = """
local parts = {{[==[{0}]==], [==[{1}]==], [==[{2}]==]}}
local headers = {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json",
                 ["User-Agent"] = "MinIO (linux; amd64) minio-go/v7"}}
local n = 0
request = function()
  local key = string.format("bench%%2F{run}%%2F%07d.jpg", n)
  n = n + 1
  return wrk.format("POST", "/events", headers, parts[1] .. key .. parts[2] .. key .. parts[3])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {{"requests": %d, "microseconds": %d, "status": %d, "errors": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "max": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkRun:
    """One wrk run: requests answered, refused, and latency (ms) as wrk measured them."""

    connections: int
    answered: int  # 2xx
    refused: int  # other statuses, and socket errors
    rate: float  # 2xx per second
    p50: float
    p90: float
    p99: float
    max: float
    wrk_cpu: float  # wrk CPU seconds per wall second
    receiver_cpu: float  # receiver CPU seconds per wall second

    @property
    def cpu_per_event(self) -> float:
        return self.receiver_cpu / self.rate * 1e6 if self.rate else float("nan")

    def row(self) -> str:
        return (
            f"{self.rate:,.0f} | {self.p50:.2f} | {self.p90:.2f} | {self.p99:.2f} | {self.max:.2f} "
            f"| {self.cpu_per_event:.0f} | {self.wrk_cpu:.2f} "
            f"| {self.answered}{f', {self.refused} refused' if self.refused else ''}"
        )


def run_wrk(target: Receiver, run: str, connections: int, seconds: float) -> WrkRun:
    """wrk (one thread, ``connections`` keep-alive connections) POSTing a distinct key per request."""
    template = minio_body("@KEY@").decode().split("@KEY@")
    script = WRK_SCRIPT.format(*template, token=TOKEN, run=run)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="s3thumbs-bench-") as lua:
        lua.write(script)
        lua.flush()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = _cpu_seconds(target.process.pid)
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "-s",
                lua.name,
                f"http://127.0.0.1:{target.port}/events",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        receiver_cpu = _cpu_seconds(target.process.pid) - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRK ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-1000:]}{done.stderr[-1000:]}")
    result = json.loads(line[4:])
    wall = result["microseconds"] / 1e6
    refused = result["status"] + result["errors"]
    answered = result["requests"] - result["status"]
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return WrkRun(
        connections,
        answered,
        refused,
        answered / wall,
        result["p50"] / 1e3,
        result["p90"] / 1e3,
        result["p99"] / 1e3,
        result["max"] / 1e3,
        wrk_cpu / wall,
        receiver_cpu / wall,
    )


def wrk_ceiling(clients: int, seconds: float) -> tuple[WrkRun, WrkRun]:
    """wrk against a server that answers every request at once: its own ceiling, with ``clients`` and with 1."""
    with null_target() as target:
        return run_wrk(target, "ceiling", clients, seconds), run_wrk(target, "ceiling-serial", 1, seconds)


# --- the bare loop -----------------------------------------------------------------------------


@dataclass
class Bare(Timed):
    rate: float  # publishes per second
    cpu_per_event: float  # CPU µs of the publishing thread per publish
    latencies: list[float]  # ms per send_task call, sorted


def bare_loop(app: Celery, run: str, count: int) -> tuple[Bare, list[str]]:
    """``send_task`` in a loop in one thread, as the receiver would publish each event, each call timed.

    Returns the loop's numbers and the keys published.
    """
    keys = keys_for(run, count)
    latencies = [0.0] * count
    done: list[tuple[float, float]] = []

    def loop() -> None:
        clock = time.perf_counter_ns
        started, cpu = clock(), time.thread_time()
        for index, key in enumerate(keys):
            sent = clock()
            app.send_task(
                THUMBNAIL_TASK,
                args=[BUCKET, key],
                kwargs={"etag": ETAG},
                queue=QUEUE,
                task_id=str(uuid.uuid4()),
                retry=True,
                retry_policy=PUBLISH_RETRY,
            )
            latencies[index] = (clock() - sent) / 1e6
        done.append(((clock() - started) / 1e9, time.thread_time() - cpu))

    # A warm-up publish outside the timing: connection, declarations.
    app.send_task(THUMBNAIL_TASK, args=[BUCKET, f"bench/{run}/warm-up.jpg"], queue=QUEUE)
    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    seconds, cpu = done[0]
    return Bare(count / seconds, cpu / count * 1e6, sorted(latencies)), [*keys, f"bench/{run}/warm-up.jpg"]


@dataclass
class Pass:
    """One pass on one broker: the bare loop, the receiver under load, the receiver fed serially."""

    bare: Bare
    load: Load
    serial: Serial

    @property
    def cpu_ratio(self) -> float:
        """The receiver's CPU per event under load over the bare loop's."""
        return self.load.cpu_per_event / self.bare.cpu_per_event

    def latency_ratio(self, q: float) -> float:
        """The serial sender's ``q`` quantile latency over the bare loop's."""
        return self.serial.ms(q) / self.bare.ms(q)


# --- the broker --------------------------------------------------------------------------------


class Broker:
    """Counts, checks and empties the ``s3thumbs`` queue of one broker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = "Redis" if url.startswith(("redis://", "rediss://")) else "RabbitMQ"

    def check_idle(self) -> None:
        """Refuse to run on a broker that holds tasks or has a consumer: the counts would be wrong."""
        if self.kind == "Redis":
            import redis

            with redis.Redis.from_url(self.url) as client:
                if client.dbsize():
                    raise SystemExit(f"{self.url} is not empty: give the benchmark a Redis database of its own")
            return
        from kombu import Connection

        with Connection(self.url) as connection:
            _, messages, consumers = connection.default_channel.queue_declare(QUEUE, durable=True, auto_delete=False)
        if messages or consumers:
            raise SystemExit(
                f"queue {QUEUE!r} on {self.url} has {messages} message(s) and "
                f"{consumers} consumer(s): stop any worker and empty it first"
            )

    def take(self) -> tuple[int, set[str]]:
        """(messages in the queue, the object keys they carry); empties the queue."""
        if self.kind == "Redis":
            import redis

            with redis.Redis.from_url(self.url) as client:
                raw = client.lrange(QUEUE, 0, -1)
                client.delete(QUEUE)
            keys = [json.loads(base64.b64decode(json.loads(m)["body"]))[0][1] for m in raw]
            return len(keys), set(keys)
        from kombu import Connection

        keys = []
        with Connection(self.url) as connection:
            channel = connection.default_channel
            while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
                keys.append(json.loads(message.body)[0][1])
        return len(keys), set(keys)

    def clean_up(self) -> None:
        if self.kind == "Redis":
            import redis

            with redis.Redis.from_url(self.url) as client:
                client.flushdb()
        else:
            self.take()

    def verify(self, accepted: list[str], what: str) -> str:
        """Check that every accepted event is on the broker (and empty it); a short report."""
        count, keys = self.take()
        missing = set(accepted) - keys
        if missing:
            raise SystemExit(
                f"{what}: {len(missing)} of {len(accepted)} accepted event(s) are not on the broker, "
                f"e.g. {sorted(missing)[:3]}"
            )
        extra = f", and {count - len(accepted)} more" if count > len(accepted) else ""
        return f"all {len(accepted)} on the broker{extra}"


# --- main --------------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every number."""
    return f"{os.getloadavg()[0]:.2f}"


def machine() -> str:
    packages = ", ".join(
        f"{name} {_version(name)}"
        for name in ("celery", "kombu", "redis", "amqp", "uvicorn", "starlette", "httptools", "uvloop")
    )
    return f"{cpus()}; {packages}"


def server_version(broker: Broker) -> str:
    if broker.kind == "Redis":
        import redis

        with redis.Redis.from_url(broker.url) as client:
            return f"Redis {client.info('server')['redis_version']}"
    from kombu import Connection

    with Connection(broker.url) as connection:
        connection.connect()
        version = connection.connection.server_properties.get("version", "?")
    return f"RabbitMQ {version.decode() if isinstance(version, bytes) else version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per measurement (default 5000)")
    parser.add_argument("--serial-events", type=int, help="events per serial-sender measurement (default: as --events)")
    parser.add_argument("--passes", type=int, default=3, help="passes per broker (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="keep-alive HTTP connections (default 4)")
    parser.add_argument(
        "--broker", action="append", help=f"broker URL, repeatable (default: {' and '.join(DEFAULT_BROKERS)})"
    )
    parser.add_argument(
        "--wrk", action="store_true", help="also measure with wrk (on the PATH), once per broker after the passes"
    )
    parser.add_argument("--wrk-seconds", type=float, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--load-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serial-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--null-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        port, run, count, clients = args.load_child
        load_child(int(port), run, int(count), int(clients))
        return
    if args.serial_child:
        port, run, count = args.serial_child
        serial_child(int(port), run, int(count))
        return
    if args.null_server:
        null_server(args.null_server)
        return
    serial_events = args.serial_events or args.events
    if args.wrk and shutil.which("wrk") is None:
        raise SystemExit("--wrk: no wrk on the PATH (Debian and Ubuntu: apt-get install wrk)")

    print(f"Machine: {machine()}\n")
    print(
        f"{args.events} events per measurement ({serial_events} for the serial sender), {args.passes} passes per "
        f"broker, {args.clients} keep-alive clients; ratios taken within each pass, then the median over passes. "
        f"Load average at the start: {load_average()}.\n"
    )
    ceiling, serial_ceiling = load_generator_ceiling(args.events, serial_events, args.clients)
    print(
        f"Load generators alone, against a server that answers at once: {args.clients} clients "
        f"{ceiling.rate:,.0f} requests/s, load generator CPU {ceiling.client_cpu:.2f}; serial sender "
        f"{serial_ceiling.summary()}, CPU {serial_ceiling.client_cpu:.2f}.\n"
    )
    wrk_rows: list[tuple[str, WrkRun]] = []
    if args.wrk:
        wrk_rows += [
            ("none: a server that answers at once", run) for run in wrk_ceiling(args.clients, args.wrk_seconds)
        ]
    rows: list[tuple[str, list[Pass]]] = []
    for url in args.broker or DEFAULT_BROKERS:
        broker = Broker(url)
        broker.check_idle()
        print(f"## {broker.kind} ({server_version(broker)}, `{url}`)\n")
        passes: list[Pass] = []
        app = celery_app.create_app(Settings(broker_url=url, result_backend=None), results=False)
        try:
            with tempfile.TemporaryDirectory(prefix="s3thumbs-bench-") as tmp, receiver(url, Path(tmp)) as target:
                _, accepted = post_events(target, "warm-up", min(500, args.events), args.clients)
                broker.verify(accepted, "warm-up")
                for n in range(args.passes):
                    run = uuid.uuid4().hex[:8]
                    # Alternate the order, so that no side always runs on a warmer machine.
                    order = ("bare", "receiver", "serial") if n % 2 == 0 else ("serial", "receiver", "bare")
                    checks: dict[str, str] = {}
                    for side in order:
                        if side == "bare":
                            bare, published = bare_loop(app, f"{run}-bare", args.events)
                        elif side == "receiver":
                            load, published = post_events(target, f"{run}-receiver", args.events, args.clients)
                        else:
                            serial, published = post_serial(target, f"{run}-serial", serial_events)
                        checks[side] = broker.verify(published, side)
                    one = Pass(bare, load, serial)
                    passes.append(one)
                    print(
                        f"- pass {n + 1}: bare {bare.rate:,.0f}/s ({checks['bare']}); receiver {load.rate:,.0f}/s "
                        f"({load.accepted} 2xx{load.refusals()}; {checks['receiver']}); ratio "
                        f"{load.rate / bare.rate:.2f}; CPU µs per event: bare {bare.cpu_per_event:.0f}, receiver "
                        f"{load.cpu_per_event:.0f} ({one.cpu_ratio:.2f}×); CPU per wall second: receiver "
                        f"{load.receiver_cpu:.2f}, load generator {load.client_cpu:.2f}; load average {load_average()}"
                    )
                    print(
                        f"  - serial sender: {serial.summary()} ({serial.accepted} 2xx{serial.refusals()}; "
                        f"{checks['serial']}); bare `send_task` per publish: {bare.summary()}; receiver / bare: "
                        f"p50 {one.latency_ratio(0.5):.2f}×, p99 {one.latency_ratio(0.99):.2f}×, events/s "
                        f"{serial.rate / bare.rate:.2f}×; receiver CPU µs per event {serial.cpu_per_event:.0f}"
                    )
                if args.wrk:
                    for connections in (args.clients, 1):
                        run = f"{uuid.uuid4().hex[:8]}-wrk"
                        result = run_wrk(target, run, connections, args.wrk_seconds)
                        # wrk does not say which requests got a 2xx, only how many: each 2xx must have
                        # put its own event on the broker, and requests cut off at the end may have too.
                        count, keys = broker.take()
                        if (
                            count < result.answered
                            or len(keys) < count
                            or any(not key.startswith(f"bench/{run}/") for key in keys)
                        ):
                            raise SystemExit(
                                f"wrk: {result.answered} 2xx, but {count} message(s) and {len(keys)} distinct key(s) "
                                "of this run on the broker"
                            )
                        print(
                            f"- wrk, {connections} connection(s): {result.answered} 2xx, {count} distinct events "
                            "of the run on the broker"
                        )
                        wrk_rows.append((broker.kind, result))
        finally:
            broker.clean_up()
        print()
        rows.append((broker.kind, passes))
    report(rows, args.clients, ceiling, serial_ceiling)
    if wrk_rows:
        print(
            f"\n## wrk, {args.wrk_seconds:g} s per run, one run per broker after the passes\n\n"
            "| broker | connections | events/s | p50 ms | p90 ms | p99 ms | max ms | receiver CPU µs per event "
            "| wrk CPU | 2xx |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for kind, result in wrk_rows:
            print(f"| {kind} | {result.connections} | {result.row()} |")
        print(
            "\nwrk 4.1 (one thread) POSTs the same MinIO body with a distinct key per request; latency as wrk "
            "measures it; one connection is a serial sender. wrk CPU: CPU seconds per wall second."
        )


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def report(rows: list[tuple[str, list[Pass]]], clients: int, ceiling: Load, serial_ceiling: Serial) -> None:
    """The summary tables: medians over passes of each broker's passes."""
    print("## Events/s and CPU per event (median over passes)\n")
    print(
        f"| broker | bare `send_task` loop, 1 thread | receiver, 1 process, {clients} clients | receiver / bare "
        "| CPU µs per event, bare | CPU µs per event, receiver | CPU receiver / bare "
        f"| goal ≤ {CPU_GOAL:g}× | receiver CPU | load generator CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for kind, passes in rows:
        cpu_ratio = median(p.cpu_ratio for p in passes)
        print(
            f"| {kind} | {median(p.bare.rate for p in passes):,.0f} | {median(p.load.rate for p in passes):,.0f} "
            f"| {median(p.load.rate / p.bare.rate for p in passes):.2f}× "
            f"| {median(p.bare.cpu_per_event for p in passes):.0f} "
            f"| {median(p.load.cpu_per_event for p in passes):.0f} | {cpu_ratio:.2f}× "
            f"| {'pass' if cpu_ratio <= CPU_GOAL else 'FAIL'} "
            f"| {median(p.load.receiver_cpu for p in passes):.2f} "
            f"| {median(p.load.client_cpu for p in passes):.2f} |"
        )
    fastest = max(p.load.rate for _, passes in rows for p in passes)
    print(
        "\nCPU µs per event: CPU time of the publishing thread (bare) or of the whole receiver process, divided "
        "by the events it published. Receiver CPU, load generator CPU: CPU seconds per wall second of each "
        f"process (1.00 = one core busy). The load generator alone reached {ceiling.rate / fastest:.0f}× the "
        "fastest receiver measurement above.\n"
    )
    print("## Serial sender: latency per event (median over passes)\n")
    print("| broker | | p50 ms | p90 ms | p99 ms | max ms | events/s | CPU µs per event |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, passes in rows:
        bare = [p.bare for p in passes]
        serial = [p.serial for p in passes]
        cells: list[tuple[str, Sequence[Bare | Serial]]] = [
            ("bare `send_task`, per publish", bare),
            ("receiver, 1 serial sender, per POST", serial),
        ]
        for label, runs in cells:
            print(
                f"| {kind} | {label} | "
                + " | ".join(f"{median(r.ms(q) for r in runs):.2f}" for q in (0.5, 0.9, 0.99))
                + f" | {max(r.ms(1) for r in runs):.2f} | {median(r.rate for r in runs):,.0f} "
                f"| {median(r.cpu_per_event for r in runs):.0f} |"
            )
        print(
            f"| {kind} | receiver − bare, ms | "
            + " | ".join(f"{median(p.serial.ms(q) - p.bare.ms(q) for p in passes):+.2f}" for q in (0.5, 0.9, 0.99))
            + " | | | |"
        )
        print(
            f"| {kind} | receiver / bare | "
            + " | ".join(f"{median(p.latency_ratio(q) for p in passes):.2f}×" for q in (0.5, 0.9, 0.99))
            + f" | | {median(p.serial.rate / p.bare.rate for p in passes):.2f}× "
            f"| {median(p.serial.cpu_per_event / p.bare.cpu_per_event for p in passes):.2f}× |"
        )
    print(
        "\nSerial sender: one keep-alive connection, each POST sent once the last was answered, as MinIO's "
        "webhook target and Ceph RGW's topic push deliver; its latency runs from the first byte sent to the last "
        "byte of the answer read. Bare: each `send_task` call of the loop above, timed. max: the worst of all "
        f"passes. The serial sender alone, against a server that answers at once: {serial_ceiling.summary()}."
    )


if __name__ == "__main__":
    main()
