"""Real s3thumbs processes for integration tests: receiver, worker and one-shot commands, and waiting on them."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from tests.support.servers import LOOPBACK, free_port

REGION = "us-east-1"
_CELERY_TIMESTAMP = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    """Poll until ``condition()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def s3thumbs_env(**settings: str) -> dict[str, str]:
    """A clean environment for an s3thumbs subprocess: no S3THUMBS_* of the caller's, fake AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3THUMBS_", "AWS_"))}
    env.update(CREDENTIALS)
    env.update({f"S3THUMBS_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_s3thumbs(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a one-shot ``s3thumbs`` command to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "s3thumbs", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def group_alive(pgid: int) -> bool:
    """True while any process of the process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Service:
    """An ``s3thumbs`` subprocess in its own process group, logging to a file; ``open_files`` lowers its
    limit of open file descriptors (as a container's ``ulimit -n`` would)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, open_files: int | None = None) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "s3thumbs", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if open_files is None else lambda: _limit_open_files(open_files),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged_at(self, text: str) -> float:
        """When the first line containing ``text`` was logged (a Unix time), from the timestamp Celery's
        worker puts on each line: ``[2026-01-01 12:00:00,123: INFO/MainProcess] ...``."""
        for line in self.log().splitlines():
            if text in line and (stamp := _CELERY_TIMESTAMP.match(line)):
                return datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        raise AssertionError(f"no timestamped line with {text!r} in {self.log_path}")

    def wait_log(self, text: str, timeout: float = 30, count: int = 1) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"process exited {self.process.returncode}:\n{self.log()[-3000:]}")
            return self.log().count(text) >= count

        try:
            wait_for(seen, timeout, f"{text!r} in the log")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{self.log()[-3000:]}") from None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the whole group, wait, and SIGKILL whatever is left."""
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)
        self._log.close()


def _limit_open_files(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


@contextmanager
def receiver(env: dict[str, str], log: Path, open_files: int | None = None) -> Iterator[str]:
    """A receiver subprocess on a free loopback port; yields its base URL."""
    with receiver_on(free_port(), env, log, open_files) as url:
        yield url


@contextmanager
def receiver_on(port: int, env: dict[str, str], log: Path, open_files: int | None = None) -> Iterator[str]:
    """A receiver subprocess on loopback ``port``, one a store was told about in advance; yields its base URL."""
    service = Service(["receiver", "--host", LOOPBACK, "--port", str(port)], env, log, open_files)
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for(lambda: _healthy(url, service), 30, "the receiver's /healthz")
        yield url
    finally:
        service.stop()


def _healthy(url: str, service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"receiver exited:\n{service.log()[-3000:]}")
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def worker(env: dict[str, str], log: Path, *args: str) -> Iterator[Service]:
    """A real ``s3thumbs worker`` (prefork) subprocess, ready to consume."""
    name = f"w{free_port()}@localhost"
    argv = ["worker", "--pool", "prefork", "--concurrency", "1", "--hostname", name]
    service = Service([*argv, "--without-mingle", "--without-gossip", *args], env, log)
    try:
        service.wait_log(" ready.", timeout=60)
        yield service
    finally:
        service.stop()
