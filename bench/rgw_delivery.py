"""Measure Ceph RGW 16.2's two kinds of topic against the real receiver: what a PUT costs, and what
happens to events written while the receiver is down.

``persistent=false`` (s3thumbs' default) pushes inside the S3 request; ``persistent=true`` queues the
event in RADOS and pushes it later, retrying. This script starts a private Ceph RGW (as the
``ceph_rgw`` fixture does), a private Redis and a real ``s3thumbs receiver``, makes each topic with
``s3thumbs notify --push-endpoint [--persistent]``, and then:

1. latency: PUTs of a small object, interleaved over a bucket without notifications, one notifying
   a non-persistent topic and one notifying a persistent topic (receiver answering normally);
2. outage, per kind: events before, during a receiver outage of ``--outage`` seconds (one PUT a
   second) and after it (one a second), then watches for ``--watch`` seconds which of them reach the
   receiver and when, with radosgw's pubsub counters; with ``--restart-rgw``, a persistent queue still
   stuck then gets a radosgw restart and another watch.

A report in Markdown goes to stdout; logs stay in the directory it names. It takes minutes, so it is
a script and not a test:

    python bench/rgw_delivery.py --puts 100 --outage 10 --watch 120 --restart-rgw
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: the repository's tests/support
from tests.support.pipelines import json_lines
from tests.support.processes import receiver_on, run_s3thumbs, s3thumbs_env, wait_for
from tests.support.servers import LOOPBACK, free_port, start_redis
from tests.support.stores import CephRGW, start_ceph

TOKEN = "rgw-delivery-token"
BODY = b"x" * 1024  # the receiver never reads the object: a small body isolates the notification's cost
PUBSUB = ("pubsub_event_triggered", "pubsub_event_lost", "pubsub_push_ok", "pubsub_push_failed", "pubsub_push_pending")


class Bench:
    """A Ceph RGW, a Redis and a receiver that can be stopped and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.store: CephRGW = start_ceph(directory / "ceph")
        self.redis = start_redis(directory / "redis")
        self.port = free_port()
        self.env = s3thumbs_env(
            broker_url=self.redis.url_for(0),
            result_backend="",
            s3_endpoint_url=self.store.endpoint_url,
            auth_token=TOKEN,
            log_format="json",
        )
        self.env.update(AWS_ACCESS_KEY_ID=self.store.access_key, AWS_SECRET_ACCESS_KEY=self.store.secret_key)
        self.s3 = self.store.client()
        self._receiver: ExitStack | None = None
        self._runs = 0

    @property
    def push_endpoint(self) -> str:
        return f"http://s3thumbs:{TOKEN}@{LOOPBACK}:{self.port}/events"

    def start_receiver(self) -> None:
        self._runs += 1
        stack = ExitStack()
        stack.enter_context(receiver_on(self.port, self.env, self.directory / f"receiver{self._runs}.log"))
        self._receiver = stack

    def stop_receiver(self) -> None:
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    def close(self) -> None:
        self.stop_receiver()
        self.redis.kill()
        self.store.close()

    def bucket(self, kind: str, persistent: bool | None) -> str:
        """A new bucket; notifying a new topic of that kind unless ``persistent`` is None."""
        name = self.store.create_bucket(f"{kind}-{uuid.uuid4().hex[:8]}")
        if persistent is not None:
            flag = "--persistent" if persistent else "--not-persistent"
            topic = f"t-{name}"
            done = run_s3thumbs(
                self.env, "notify", name, "--push-endpoint", self.push_endpoint, "--topic", topic, flag, timeout=120
            )
            if done.returncode != 0:
                raise RuntimeError(f"notify failed: {done.stdout}{done.stderr}")
        return name

    def delivered(self, bucket: str) -> dict[str, float]:
        """Keys of ``bucket`` the receiver published, with when it first logged each (Unix time)."""
        found: dict[str, float] = {}
        for log in sorted(self.directory.glob("receiver*.log")):
            for line in json_lines(log):
                if line.get("bucket") == bucket and line["message"].startswith("published "):
                    at = datetime.strptime(line["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    found.setdefault(line["key"], at)
        return found

    def put(self, bucket: str, key: str) -> tuple[float, float]:
        """PUT ``key``; (when it was sent, seconds it took)."""
        started, clock = time.time(), time.perf_counter()
        self.s3.put_object(Bucket=bucket, Key=key, Body=BODY)
        return started, time.perf_counter() - clock

    def pubsub(self) -> dict[str, float]:
        """radosgw's pubsub counters, from its admin socket."""
        asok = self.store.directory / "run" / "client.rgw.asok"
        done = subprocess.run(
            [self.store.binaries["ceph"], "--admin-daemon", str(asok), "perf", "dump"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            return {}
        counters: dict[str, Any] = json.loads(done.stdout).get("rgw", {})
        return {name: counters.get(name, 0) for name in PUBSUB}

    def restart_rgw(self) -> float:
        """Restart radosgw (SIGTERM, then start it again); seconds until it answers S3 again."""
        process = self.store._processes["rgw"]
        process.terminate(timeout=30)
        started = time.monotonic()
        process.start()
        wait_for(self.store._s3_answers, 120, "radosgw answering again", interval=0.2)
        return time.monotonic() - started


def summary(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p90 = ms[max(0, int(0.9 * len(ms)) - 1)]
    middle, mean = statistics.median(ms), statistics.fmean(ms)
    return f"median {middle:.1f} ms, p90 {p90:.1f} ms, mean {mean:.1f} ms, max {ms[-1]:.1f} ms"


def latency(bench: Bench, puts: int, first_delivery_timeout: float) -> list[str]:
    """PUT latency per kind of bucket, interleaved; and how long the persistent topic took to start."""
    buckets = {
        "no notification": bench.bucket("plain", None),
        "persistent=false": bench.bucket("np", False),
        "persistent=true": bench.bucket("p", True),
    }
    report = ["## PUT latency (receiver answering normally)", ""]
    # A new persistent topic's queue is picked up on a cycle: wait for its first delivery before measuring.
    sent, _ = bench.put(buckets["persistent=true"], "warm/first.jpg")
    wait_for(
        lambda: "warm/first.jpg" in bench.delivered(buckets["persistent=true"]),
        first_delivery_timeout,
        "the persistent topic's first delivery",
        interval=0.2,
    )
    first = bench.delivered(buckets["persistent=true"])["warm/first.jpg"] - sent
    report.append(f"- first delivery on a new persistent topic: {first:.1f} s after its PUT")
    for bucket in buckets.values():  # warm connections and code paths
        for number in range(5):
            bench.put(bucket, f"warm/{number}.jpg")
    took: dict[str, list[float]] = {name: [] for name in buckets}
    sent_at: dict[str, dict[str, float]] = {name: {} for name in buckets}
    for number in range(puts):
        for name, bucket in buckets.items():
            key = f"lat/{number:04d}.jpg"
            at, seconds = bench.put(bucket, key)
            took[name].append(seconds)
            sent_at[name][key] = at + seconds
    baseline = statistics.median(took["no notification"])
    for name in buckets:
        added = statistics.median(took[name]) - baseline
        report.append(f"- {name}: {summary(took[name])}; median added {1000 * added:+.1f} ms")
    for name in ("persistent=false", "persistent=true"):
        bucket = buckets[name]
        wait_for(
            lambda bucket=bucket: len([k for k in bench.delivered(bucket) if k.startswith("lat/")]) >= puts,
            60,
            f"{name}: every event delivered",
            interval=0.2,
        )
        got = bench.delivered(bucket)
        lags = [got[key] - done for key, done in sent_at[name].items()]
        report.append(
            f"- {name}: {len(lags)}/{puts} events delivered; the receiver logged each {summary(lags)} "
            "after its PUT returned (negative: before the client had its answer; log times have 1 ms resolution)"
        )
    return report


def outage(bench: Bench, persistent: bool, seconds: int, watch: float, restart: bool) -> list[str]:
    """Events before, during and after a receiver outage: which arrive, and when."""
    name = f"persistent={str(persistent).lower()}"
    bucket = bench.bucket("outage-p" if persistent else "outage-np", persistent)
    report = [f"## Receiver outage of ~{seconds} s, {name} (bucket {bucket})", ""]
    before = [f"before/{n}.jpg" for n in range(3)]
    during = [f"during/{n:02d}.jpg" for n in range(seconds)]
    after = [f"after/{n:02d}.jpg" for n in range(seconds)]
    for key in before:
        bench.put(bucket, key)
    wait_for(lambda: set(before) <= set(bench.delivered(bucket)), 120, "the events before the outage", interval=0.2)
    report.append(f"- pubsub counters before: {bench.pubsub()}")
    bench.stop_receiver()
    down = time.time()
    put_during = []
    for key in during:
        _, took = bench.put(bucket, key)
        put_during.append(took)
        time.sleep(max(0.0, 1.0 - took))
    report.append(f"- pubsub counters at the end of the outage: {bench.pubsub()}")
    bench.start_receiver()
    up = time.time()
    report.append(f"- receiver down for {up - down:.1f} s; PUTs during the outage: {summary(put_during)}")
    for key in after:
        _, took = bench.put(bucket, key)
        time.sleep(max(0.0, 1.0 - took))
    sent_last = time.time()
    wanted = set(before) | set(during) | set(after)
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline and not wanted <= set(bench.delivered(bucket)):
        time.sleep(0.5)
    report += describe(bench.delivered(bucket), during, after, up, sent_last)
    report.append(f"- pubsub counters after watching {watch:.0f} s: {bench.pubsub()}")
    if restart and persistent and not wanted <= set(bench.delivered(bucket)):
        took = bench.restart_rgw()
        restarted = time.time()
        report.append(f"- radosgw restarted (answering S3 again after {took:.1f} s)")
        deadline = time.monotonic() + watch
        while time.monotonic() < deadline and not wanted <= set(bench.delivered(bucket)):
            time.sleep(0.5)
        got = bench.delivered(bucket)
        late = [got[key] - restarted for key in during + after if key in got and got[key] > restarted]
        report.append(
            f"- after the restart: {len(set(during) & set(got))}/{len(during)} during, "
            f"{len(set(after) & set(got))}/{len(after)} after delivered"
            + (f"; first {min(late):.1f} s, last {max(late):.1f} s after the restart" if late else "")
        )
        report.append(f"- pubsub counters then: {bench.pubsub()}")
    return report


def describe(got: dict[str, float], during: list[str], after: list[str], up: float, sent_last: float) -> list[str]:
    lines = []
    for label, keys in (("during", during), ("after", after)):
        arrived = [got[key] for key in keys if key in got]
        line = f"- events written {label} the outage: {len(arrived)}/{len(keys)} delivered"
        if arrived:
            line += f", first {min(arrived) - up:+.1f} s and last {max(arrived) - up:+.1f} s from the receiver's return"
        lines.append(line)
    order = sorted((at, key) for key, at in got.items() if key.startswith(("during/", "after/")))
    keys = [key for _, key in order]
    lines.append(f"- arrival order of during/after events is the write order: {keys == sorted(keys)}")
    lines.append(f"- last PUT {sent_last - up:.1f} s after the receiver's return")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=100, help="PUTs per kind of bucket in the latency run")
    parser.add_argument("--outage", type=int, default=10, help="seconds the receiver is down (one PUT a second)")
    parser.add_argument("--watch", type=float, default=120.0, help="seconds to wait for the events afterwards")
    parser.add_argument("--restart-rgw", action="store_true", help="restart radosgw if a persistent queue stays stuck")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--only", choices=["false", "true"], help="only this kind in the outage run")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="rgwdel-"))
    bench = Bench(directory)
    report = [
        f"# Ceph RGW topic delivery ({bench.store.version}); logs in {directory}",
        f"load average at start: {os.getloadavg()}",
        "",
    ]
    try:
        bench.start_receiver()
        if not args.skip_latency:
            report += latency(bench, args.puts, first_delivery_timeout=120) + [""]
        for persistent in (False, True):
            if args.only is None or args.only == str(persistent).lower():
                report += outage(bench, persistent, args.outage, args.watch, args.restart_rgw) + [""]
    finally:
        report.append(f"load average at the end: {os.getloadavg()}")
        print("\n".join(report), flush=True)
        bench.close()


if __name__ == "__main__":
    main()
