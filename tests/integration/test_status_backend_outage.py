"""A result backend that stops answering changes no answer of the receiver.

The receiver records "queued" and "skipped" for the gallery in the result backend's Redis. Those
writes happen in a thread of their own once a request has its answer: a Redis that accepts
connections and never answers (black-holed, not refusing) must neither slow ``POST /events`` nor
keep any event off the broker. Were a write on a request's path, that request would wait the
receiver's Redis timeout at least.
"""

from __future__ import annotations

import base64
import json
import statistics
import time

import httpx

from s3thumbs.redisbackend import RECEIVER_TIMEOUT_SECONDS
from tests.support.faults import TcpLink
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env

TOKEN = "backend-outage-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GALLERY_TOKEN = "backend-outage-gallery"
EVENTS = 20


def test_a_black_holed_result_backend_slows_no_request_and_loses_no_event(redis_factory, tmp_path):
    server = redis_factory()
    with TcpLink(server.host, server.port) as link:
        link.silence()  # connections are accepted; no byte ever comes back
        env = s3thumbs_env(
            broker_url=server.url_for(0),
            result_backend=f"redis://127.0.0.1:{link.port}/1",
            auth_token=TOKEN,
            gallery_token=GALLERY_TOKEN,
        )
        with receiver(env, tmp_path / "receiver.log") as url, httpx.Client(timeout=30) as http:
            seconds: list[float] = []
            for n in range(EVENTS):
                for body, expected in (
                    (minio_webhook("uploads", f"silent/{n}.jpg"), 202),
                    # Skipped (not an image): recorded for the gallery as "skipped", in the background too.
                    (minio_webhook("uploads", f"silent/{n}.txt", content_type=None), 200),
                ):
                    started = time.perf_counter()
                    response = http.post(f"{url}/events", json=body, headers=AUTH)
                    seconds.append(time.perf_counter() - started)
                    assert response.status_code == expected, response.text
            gallery = http.get(f"{url}/gallery.json", headers={"Authorization": f"Bearer {GALLERY_TOKEN}"})

    print(
        f"POST /events with a silent result backend: median {statistics.median(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms over {len(seconds)} requests"
    )
    assert statistics.median(seconds) < RECEIVER_TIMEOUT_SECONDS / 2
    assert sum(seconds) < len(seconds) * RECEIVER_TIMEOUT_SECONDS / 2
    with server.client(0) as redis:
        messages = [json.loads(raw) for raw in redis.lrange("s3thumbs", 0, -1)]
    keys = sorted(json.loads(base64.b64decode(m["body"]))[0][1] for m in messages)
    assert keys == sorted(f"silent/{n}.jpg" for n in range(EVENTS))
    # The gallery, which does wait for the store, says it cannot read it.
    assert gallery.status_code == 503
    assert "status store unavailable" in gallery.json()["message"]
