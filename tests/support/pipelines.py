"""s3thumbs wired to a real store: receiver and worker subprocesses, a private Redis, and the store's
notifications pointed at the receiver the way an operator would point them.

Ceph RGW is wired per bucket by the product itself (``s3thumbs notify BUCKET --push-endpoint URL``, run as a
subprocess); SeaweedFS's filer posts every event of every bucket to the one webhook its fixture fixed at
start (``webhook_port``, path ``/events``), so the receiver takes that port. The receiver logs JSON, so
tests read its decisions per key.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.support.processes import receiver_on, run_s3thumbs, s3thumbs_env, wait_for, worker
from tests.support.servers import LOOPBACK, RedisProcess, free_port, start_redis
from tests.support.stores import CephRGW, SeaweedFS

__all__ = [
    "DELIVERY_TIMEOUT",
    "SIZES",
    "Pipeline",
    "Thumbnail",
    "etag_of",
    "http_connection_refused",
    "json_lines",
    "multipart_upload",
]

EVENTS_PATH = "/events"
# Ceph's topic gets this token in its push-endpoint URL; SeaweedFS's filer sends its fixture's ``webhook_token``.
CEPH_TOKEN = "real-stores-sender-token"
GALLERY_TOKEN = "real-stores-gallery-token"
# Two small boxes: every case renders in well under a second on a busy 2-core machine.
SIZES = ("64x64", "256x256")
OUTPUT_PREFIX = "thumbnails/"
# Store -> receiver -> Redis -> worker -> store takes about a second here; the rest is room for a shared machine.
DELIVERY_TIMEOUT = 60.0


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log written with ``S3THUMBS_LOG_FORMAT=json`` (other lines are left out)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


@dataclass(frozen=True)
class Thumbnail:
    """One thumbnail as the store holds it: its bytes, picture, content type and user metadata."""

    key: str
    body: bytes
    image: Image.Image
    content_type: str
    metadata: dict[str, str]


class Pipeline:
    """A receiver and a worker on ``store``, with a private Redis as broker (db 0) and result backend (db 1).

    ``env`` is what every s3thumbs process of this pipeline gets: the store as ``S3THUMBS_S3_ENDPOINT_URL``
    with its own keys, the sender's and the gallery's tokens, ``SIZES``, JSON logs, and a ``TMPDIR`` of its
    own (a ``--beat`` worker keeps its schedule there). Use ``Pipeline.running``.
    """

    def __init__(self, store: CephRGW | SeaweedFS, redis: RedisProcess, directory: Path) -> None:
        self.store = store
        self.redis = redis
        self.directory = directory
        # A topic per pipeline: RGW topics are per tenant, and `notify` updates one of the same name.
        self.topic = f"s3thumbs-{uuid.uuid4().hex[:10]}"
        if isinstance(store, SeaweedFS):
            assert store.webhook_path == EVENTS_PATH, "the filer must post where the receiver listens"
            self.token, self.receiver_port = store.webhook_token, store.webhook_port
        else:
            self.token = CEPH_TOKEN
            self.receiver_port = free_port()
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = s3thumbs_env(
            broker_url=redis.url_for(0),
            result_backend=redis.url_for(1),
            s3_endpoint_url=store.endpoint_url,
            auth_token=self.token,
            gallery_token=GALLERY_TOKEN,
            sizes=",".join(SIZES),
            log_format="json",
            metrics_port=str(free_port()),
        )
        self.env.update(
            AWS_ACCESS_KEY_ID=store.access_key,
            AWS_SECRET_ACCESS_KEY=store.secret_key,
            AWS_DEFAULT_REGION=store.region,
            TMPDIR=str(directory / "tmp"),
        )
        self.worker_log = directory / "worker.log"
        self.s3 = store.client()
        self._receiver: ExitStack | None = None
        self._receiver_runs = 0

    @classmethod
    @contextmanager
    def running(cls, store: CephRGW | SeaweedFS, directory: Path) -> Iterator[Pipeline]:
        """A pipeline with its receiver and worker running; everything stopped afterwards."""
        redis = start_redis(directory / "redis")
        pipeline = cls(store, redis, directory)
        try:
            with worker(pipeline.env, pipeline.worker_log):
                pipeline.start_receiver()
                yield pipeline
        finally:
            pipeline.stop_receiver()
            redis.kill()

    @property
    def receiver_url(self) -> str:
        return f"http://{LOOPBACK}:{self.receiver_port}"

    @property
    def store_target_port(self) -> int:
        """The port the store delivers its events to: the receiver's."""
        return self.receiver_port

    @property
    def push_endpoint(self) -> str:
        """What RGW is told to push to: the receiver's ``/events`` with the token as the Basic password."""
        return f"http://s3thumbs:{self.token}@{LOOPBACK}:{self.receiver_port}{EVENTS_PATH}"

    def receiver_logs(self) -> list[Path]:
        """Every log this pipeline's receiver wrote (one per start)."""
        return sorted(self.directory.glob("receiver*.log"))

    def start_receiver(self) -> None:
        """Start the receiver on the port the store knows."""
        assert self._receiver is None, "the receiver is running"
        self._receiver_runs += 1
        log = self.directory / f"receiver{self._receiver_runs}.log"
        stack = ExitStack()
        try:
            stack.enter_context(receiver_on(self.receiver_port, self.env, log))
        except BaseException:
            stack.close()
            raise
        self._receiver = stack

    def stop_receiver(self) -> None:
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    @contextmanager
    def receiver_down(self) -> Iterator[None]:
        """Nothing listens where the store sends its events until the block ends."""
        self.stop_receiver()
        try:
            yield
        finally:
            self.start_receiver()

    def bucket(self, prefix: str) -> str:
        """A new bucket whose events reach the receiver: ``s3thumbs notify --push-endpoint`` on Ceph."""
        name = self.store.create_bucket(f"{prefix}-{uuid.uuid4().hex[:10]}")
        if isinstance(self.store, CephRGW):
            done = run_s3thumbs(
                self.env, "notify", name, "--push-endpoint", self.push_endpoint, "--topic", self.topic, timeout=120
            )
            assert done.returncode == 0, f"s3thumbs notify exited {done.returncode}: {done.stdout}{done.stderr}"
            assert f"s3://{name}: put and delete events for every key now go to" in done.stdout, done.stdout
        return name

    # --- what the receiver decided ---------------------------------------------------------------------------

    def receiver_lines(self, bucket: str) -> list[dict[str, Any]]:
        """The receiver's log lines about ``bucket`` (every run), oldest first."""
        return [line for log in self.receiver_logs() for line in json_lines(log) if line.get("bucket") == bucket]

    def published(self, bucket: str) -> list[str]:
        """Keys of ``bucket`` the receiver published a task for, in order (a key once per task)."""
        return [line["key"] for line in self.receiver_lines(bucket) if line["message"].startswith("published ")]

    def skipped(self, bucket: str) -> dict[str, list[str]]:
        """Keys of ``bucket`` the receiver skipped, each with the reasons it gave (once per event)."""
        found: dict[str, list[str]] = {}
        for line in self.receiver_lines(bucket):
            if line["message"].startswith("skipped "):
                found.setdefault(line["key"], []).append(line["reason"])
        return found

    def worker_lines(self, bucket: str) -> list[dict[str, Any]]:
        """The worker's JSON log lines about ``bucket``, oldest first."""
        return [line for line in json_lines(self.worker_log) if line.get("bucket") == bucket]

    def metric(self, text: str) -> float:
        """The value of the receiver's metric line starting with ``text`` (0 when absent)."""
        answer = httpx.get(f"{self.receiver_url}/metrics", timeout=10)
        for line in answer.text.splitlines():
            if line.startswith(text + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def gallery(self) -> dict[str, Any]:
        """``/gallery.json`` as a viewer gets it (HTTP Basic, the gallery's token as password)."""
        basic = base64.b64encode(f"viewer:{GALLERY_TOKEN}".encode()).decode()
        answer = httpx.get(f"{self.receiver_url}/gallery.json", headers={"Authorization": f"Basic {basic}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document

    # --- what the worker wrote -------------------------------------------------------------------------------

    def thumbnail_key(self, key: str, size: str) -> str:
        return f"{OUTPUT_PREFIX}{size}/{key}"

    def manifest_key(self, key: str) -> str:
        return f"{OUTPUT_PREFIX}manifest/{key}.json"

    def output_keys(self, key: str) -> list[str]:
        """What the worker writes for ``key``: every size's thumbnail, then the manifest."""
        return [*(self.thumbnail_key(key, size) for size in SIZES), self.manifest_key(key)]

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.s3.head_object(Bucket=bucket, Key=key)
        except self.s3.exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise
        return found

    def wait_thumbnails(
        self, bucket: str, key: str, etag: str, timeout: float = DELIVERY_TIMEOUT
    ) -> dict[str, Thumbnail]:
        """Every size's thumbnail of ``key``, by size, once each and the manifest (written last)
        carry the source eTag ``etag``."""

        def rendered(output: str) -> bool:
            head = self.head(bucket, output)
            return head is not None and head["Metadata"].get("s3thumbs-source-etag") == etag

        for output in self.output_keys(key):
            wait_for(lambda output=output: rendered(output), timeout, f"s3://{bucket}/{output} of {etag}")
        return {size: self.thumbnail(bucket, self.thumbnail_key(key, size)) for size in SIZES}

    def thumbnail(self, bucket: str, key: str) -> Thumbnail:
        obj = self.s3.get_object(Bucket=bucket, Key=key)
        body = obj["Body"].read()
        image = Image.open(io.BytesIO(body))
        image.load()
        return Thumbnail(key, body, image, obj["ContentType"], obj["Metadata"])

    def thumbnails_listed(self, bucket: str) -> list[str]:
        """Every key under the output prefix of ``bucket``, as the store lists them."""
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=OUTPUT_PREFIX)
        assert not listed.get("IsTruncated")
        return sorted(item["Key"] for item in listed.get("Contents", []))


def etag_of(answer: dict[str, Any]) -> str:
    """The eTag of an S3 answer (PutObject, HeadObject), without quotes."""
    return str(answer["ETag"]).strip('"')


def multipart_upload(s3: Any, bucket: str, key: str, body: bytes, part_size: int) -> None:
    """Upload ``body`` in parts of ``part_size`` bytes (S3's minimum is 5 MiB, but for the last)."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="image/jpeg")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), part_size), start=1):
        chunk = body[start : start + part_size]
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})


def http_connection_refused(port: int) -> bool:
    """True while nothing listens on loopback ``port``."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
    try:
        connection.connect()
    except OSError:
        return True
    finally:
        connection.close()
    return False
