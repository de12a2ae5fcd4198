"""Celery's own cost per task: task events, the result backend (with the status records it carries).

Runs the real ``s3thumbs worker`` (prefork) against a private redis-server and moto's S3, on tasks
whose source does not exist: each makes its one GET and one HEAD (both 404) and ends "gone", so
the task body is the same small constant in every setting and what changes between settings is
Celery's and s3thumbs' bookkeeping around it. The same body is timed bare, in a loop in this process,
as the reference. Prints Markdown. Run from the repository root:

    python bench/overhead.py [--tasks 2000] [--passes 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import celery
import moto
import redis
from pipeline import (  # bench/pipeline.py: the process, CPU and Redis helpers
    children_cpu,
    cpu_seconds,
    free_port,
    machine,
    reachable,
    service_env,
    spawn,
    start_redis,
    wait_until,
)

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
from s3thumbs.celery_app import create_app  # noqa: E402
from s3thumbs.config import Settings  # noqa: E402
from s3thumbs.messages import QUEUE, THUMBNAIL_TASK  # noqa: E402
from s3thumbs.storage import Storage, make_client  # noqa: E402
from s3thumbs.thumbnailer import Job, make_thumbnails  # noqa: E402

BUCKET = "overhead"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
# `s3thumbs worker` with task events set first (celeryd_init runs before the worker reads its settings).
WORKER = (
    "import sys\n"
    "from celery.signals import celeryd_init\n"
    "events = sys.argv.pop(1) == 'on'\n"
    "def configure(conf=None, **_):\n"
    "    conf.worker_send_task_events = events\n"
    "celeryd_init.connect(configure, weak=False)\n"
    "from s3thumbs.cli.main import main\n"
    "main(prog_name='s3thumbs')\n"
)
SETTINGS = {  # name: (task events, result backend and status records)
    "events on, results on": (True, True),
    "events off, results on": (False, True),
    "events off, results off": (False, False),
}


def bare_body(endpoint: str, tasks: int) -> float:
    """CPU µs of one task body (``make_thumbnails`` of a missing source), called in a loop here."""
    storage = Storage(make_client(endpoint))
    job = Job.from_settings(Settings())
    for n in range(20):  # warm-up: connections, imports
        make_thumbnails(storage, job, BUCKET, f"missing/{n}.jpg")
    started = time.process_time()
    for n in range(tasks):
        assert make_thumbnails(storage, job, BUCKET, f"missing/{n}.jpg").status == "gone"
    return (time.process_time() - started) / tasks * 1e6


def succeeded(log: Path) -> int:
    return log.read_text(errors="replace").count(" succeeded in ")


def run_setting(
    tmp: Path, broker: str, redis_pid: int, endpoint: str, events: bool, results: bool, tasks: int, concurrency: int
) -> dict[str, float]:
    """One worker with this setting: CPU µs per task by process, Redis commands per task, tasks/s."""
    backend = broker.rsplit("/", 1)[0] + "/1"
    env = service_env(
        CREDENTIALS, broker_url=broker, result_backend=backend if results else "", s3_endpoint_url=endpoint
    )
    log = tmp / f"worker-{events}-{results}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-c", WORKER, "on" if events else "off", "worker", "--concurrency", str(concurrency)]
    app = create_app(Settings(broker_url=broker, result_backend=None), results=False)
    server = redis.Redis.from_url(broker)
    with spawn("worker", command, env, log) as proc:
        wait_until(lambda: " ready." in log.read_text(errors="replace"), 90, "the worker")
        pid = proc.process.pid
        publish(app, 50)  # warm-up: every pool process has imported and connected
        wait_until(lambda: succeeded(log) >= 50, 60, "the warm-up tasks")
        time.sleep(0.5)
        before = (cpu_seconds(pid), children_cpu(pid), cpu_seconds(redis_pid), commands(server))
        started = time.perf_counter()
        publish(app, tasks)
        wait_until(lambda: succeeded(log) >= 50 + tasks, 600, "the tasks", interval=0.1)
        wall = time.perf_counter() - started
        after = (cpu_seconds(pid), children_cpu(pid), cpu_seconds(redis_pid), commands(server))
    app.close()
    main, pool, redis_cpu, sent = (b - a for a, b in zip(before, after, strict=True))
    return {
        "main": main / tasks * 1e6,
        "pool": pool / tasks * 1e6,
        "redis": redis_cpu / tasks * 1e6,
        "commands": sent / tasks,
        "per_second": tasks / wall,
    }


def publish(app: celery.Celery, count: int) -> None:
    with app.producer_or_acquire() as producer:
        for n in range(count):
            app.send_task(THUMBNAIL_TASK, [BUCKET, f"missing/{n}.jpg"], queue=QUEUE, producer=producer)


def commands(server: Any) -> int:
    """Commands the Redis server has processed so far (this measurement's own INFO included)."""
    return int(server.info("stats")["total_commands_processed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per measurement (default 2000)")
    parser.add_argument("--passes", type=int, default=3, help="passes over every setting (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker --concurrency (default 2)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="s3thumbs-overhead-") as directory:
        tmp = Path(directory)
        redis_url, redis_pid = start_redis(stack, tmp)
        # moto in a process of its own: its CPU is in no column, the bare loop's included.
        port = free_port()
        moto_server = stack.enter_context(
            spawn(
                "moto",
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                {**os.environ},
                tmp / "moto.log",
            )
        )
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(lambda: reachable(endpoint, moto_server), 30, "moto's server")
        os.environ.update(CREDENTIALS)
        make_client(endpoint).create_bucket(Bucket=BUCKET)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
        bare: list[float] = []
        broker = redis_url + "/0"
        for n in range(args.passes):
            bare.append(bare_body(endpoint, min(args.tasks, 1000)))
            for name, (events, results) in SETTINGS.items():
                rows[name].append(
                    run_setting(
                        tmp, redis_url + "/0", redis_pid, endpoint, events, results, args.tasks, args.concurrency
                    )
                )
                print(f"pass {n + 1}, {name}: {rows[name][-1]}", file=sys.stderr)
        store = "moto " + moto.__version__
        print(f"Machine: {machine(broker, redis_url + '/1', store)}\n")
        print(report(args, rows, statistics.median(bare)))


def report(args: argparse.Namespace, rows: dict[str, list[dict[str, float]]], bare: float) -> str:
    lines = [
        f"{args.tasks} tasks per measurement, worker --concurrency {args.concurrency}, {args.passes} passes "
        '(median per column). Each task: GET and HEAD of a missing source (404), outcome "gone".\n',
        f"The task body alone (`make_thumbnails`, a loop in one process): **{bare:,.0f} µs** CPU per call.\n",
        "| setting | worker main process µs/task | pool processes µs/task | redis-server µs/task "
        "| total µs/task | beyond the body | Redis commands/task | tasks/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, passes in rows.items():
        med = {column: statistics.median(p[column] for p in passes) for column in passes[0]}
        total = med["main"] + med["pool"] + med["redis"]
        lines.append(
            f"| {name} | {med['main']:,.0f} | {med['pool']:,.0f} | {med['redis']:,.0f} | {total:,.0f} "
            f"| {total - bare:,.0f} | {med['commands']:.1f} | {med['per_second']:,.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
