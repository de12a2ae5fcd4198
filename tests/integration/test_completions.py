"""Completion events from a real worker to a real HTTP endpoint that fails first and checks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from celery.result import AsyncResult

from s3thumbs import celery_app, deadletters
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import DELIVER_TASK
from tests.support import images
from tests.support.buckets import fresh_bucket, s3_client
from tests.support.processes import run_s3thumbs, s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import empty_redis

SECRET = "events-secret-for-tests"


@dataclass
class Endpoint:
    """An app's events URL: answers 500 to the first delivery of each event, then 200; verifies
    every signature as the README tells an app to."""

    url: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[dict[str, Any]]:
        """The events answered 200, in order, each once."""
        with self.lock:
            return [a["event"] for a in self.attempts if a["status"] == 200]

    def of(self, event_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.attempts if a["event"]["id"] == event_id]


def verified(secret: str, header: str, body: bytes, tolerance: float = 300) -> bool:
    """What an app does with ``S3thumbs-Signature``: recompute, compare in constant time, check age."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < tolerance


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            good = verified(SECRET, self.headers.get("S3thumbs-Signature", "t=0,v1="), body)
            event = json.loads(body)
            with found.lock:
                first = not any(a["event"]["id"] == event["id"] for a in found.attempts)
                status = 401 if not good else 500 if first else 200
                found.attempts.append(
                    {
                        "event": event,
                        "status": status,
                        "signature": self.headers["S3thumbs-Signature"],
                        "at": time.time(),
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hooks/s3thumbs"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield found
    server.shutdown()
    server.server_close()


def publish(env: dict[str, str], action: str, bucket: str, key: str, etag: str | None = None) -> AsyncResult:
    event = ObjectEvent(action, bucket, key, "test", etag=etag)  # type: ignore[arg-type]
    [task_id] = publish_events(env["S3THUMBS_BROKER_URL"], [event])
    return Results(env["S3THUMBS_RESULT_BACKEND"]).of(task_id)


def test_each_outcome_reaches_the_app_signed_at_least_once(moto_server_url, redis_server, endpoint, tmp_path):
    env = s3thumbs_env(
        **empty_redis(redis_server, 7, 8),
        s3_endpoint_url=moto_server_url,
        events_url=endpoint.url,
        events_secret=SECRET,
        max_retries="0",
    )
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "events")
    key, broken = "albums/summer ü+1.jpg", "albums/broken.jpg"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(800, 600))["ETag"].strip('"')
    s3.put_object(Bucket=bucket, Key=broken, Body=b"not a picture")

    with worker(env, tmp_path / "worker.log") as service:
        rendered = publish(env, "created", bucket, key)
        wait_for(rendered.ready, 30, "the render")
        assert rendered.state == "SUCCESS" and rendered.result["status"] == "written"
        wait_for(lambda: len(endpoint.accepted()) == 1, 30, "thumbnails.ready to be accepted")

        [ready] = endpoint.accepted()
        assert (ready["type"], ready["bucket"], ready["key"], ready["source_etag"]) == (
            "thumbnails.ready", bucket, key, etag,
        )  # fmt: skip
        stored = s3.get_object(Bucket=bucket, Key=f"thumbnails/manifest/{key}.json")["Body"].read()
        assert ready["manifest"] == json.loads(stored)
        # Refused once with a 500, delivered again, the same event signed afresh.
        first, second = endpoint.of(ready["id"])
        assert (first["status"], second["status"]) == (500, 200)
        assert first["event"] == second["event"]
        assert second["at"] - first["at"] >= 0.9  # the first retry's countdown: 1 s

        # Already current (a second event for the same upload): nothing new to say.
        again = publish(env, "created", bucket, key, etag)
        wait_for(again.ready, 30, "the second task")
        assert again.result["status"] == "current"

        failing = publish(env, "created", bucket, broken)
        wait_for(failing.ready, 30, "the bad image's task")
        s3.delete_object(Bucket=bucket, Key=key)
        removed = publish(env, "removed", bucket, key)
        wait_for(removed.ready, 30, "the delete")
        wait_for(lambda: len(endpoint.accepted()) == 3, 30, "thumbnails.failed and thumbnails.deleted")
        service.wait_log("thumbnails.deleted event")

    by_type = {event["type"]: event for event in endpoint.accepted()}
    assert set(by_type) == {"thumbnails.ready", "thumbnails.failed", "thumbnails.deleted"}
    assert by_type["thumbnails.failed"]["key"] == broken
    assert "not an image" in by_type["thumbnails.failed"]["reason"]
    assert by_type["thumbnails.failed"]["source_etag"]
    assert (by_type["thumbnails.deleted"]["key"], by_type["thumbnails.deleted"]["source_etag"]) == (key, None)
    assert len({event["id"] for event in endpoint.accepted()}) == 3
    assert all(a["status"] != 401 for a in endpoint.attempts)  # every signature verified


def test_a_delivery_that_ran_out_of_retries_is_redriven_with_the_same_event(redis_server):
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), events_url="https://app.example/hooks", events_secret=SECRET)
    event = {"id": "5f1d0c0ffee", "type": "thumbnails.deleted", "bucket": "b", "key": "k ü.jpg", "source_etag": None}
    app = celery_app.create_app(Settings.from_env(env), results=False)
    deadletters.record(
        app, deadletters.DeadLetter(DELIVER_TASK, "b", "k ü.jpg", "the events URL answered 503", "DeliveryFailed",
                                    "task-1", retries=20, kwargs={"event": event}),
    )  # fmt: skip

    redriven = run_s3thumbs(env, "dead-letters", "redrive")

    assert redriven.returncode == 0, redriven.stderr
    assert "re-driven s3thumbs.deliver_event s3://b/k ü.jpg" in redriven.stdout
    [raw] = redis_server.client(7).lrange("s3thumbs", 0, -1)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (message["headers"]["task"], args, kwargs) == (DELIVER_TASK, ["b", "k ü.jpg"], {"event": event})
