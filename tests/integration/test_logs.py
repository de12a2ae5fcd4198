"""Every decision about an object is one log line naming its bucket and key (JSON with S3THUMBS_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import re

import httpx

from tests.support import images
from tests.support.buckets import fresh_bucket, s3_client
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env, worker
from tests.support.servers import empty_redis

TOKEN = "log-token"


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_decisions_are_structured_log_lines_with_bucket_and_key(moto_server_url, redis_server, tmp_path):
    env = s3thumbs_env(
        **empty_redis(redis_server, 9, 10), s3_endpoint_url=moto_server_url, auth_token=TOKEN, log_format="json"
    )
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "logs")
    s3.put_object(Bucket=bucket, Key="good.jpg", Body=images.jpeg(900, 600))
    s3.put_object(Bucket=bucket, Key="bad.jpg", Body=b"not an image")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    receiver_log, worker_log = tmp_path / "receiver.log", tmp_path / "worker.log"
    with receiver(env, receiver_log) as url, worker(env, worker_log) as service:
        for key in ("good.jpg", "bad.jpg", "missing.jpg", "notes.txt", "thumbnails/128x128/good.jpg"):
            assert httpx.post(
                f"{url}/events", json=minio_webhook(bucket, key, None, content_type=None), headers=headers
            ).status_code in (200, 202)
        service.wait_log("dead letter recorded")
        service.wait_log("missing.jpg is gone")
        service.wait_log("good.jpg: wrote 3 thumbnails")

    def find(lines: list[dict], words: str, key: str) -> dict:
        matches = [line for line in lines if words in line["message"] and line.get("key") == key]
        assert matches, f"no JSON line with {words!r} for {key}"
        assert matches[0]["bucket"] == bucket
        return matches[0]

    received = json_lines(receiver_log.read_text())
    assert find(received, "published", "good.jpg")["action"] == "created"
    assert "not an image" in find(received, "skipped", "notes.txt")["reason"]
    assert "thumbnail" in find(received, "skipped", "thumbnails/128x128/good.jpg")["reason"]

    worked = json_lines(worker_log.read_text())
    written = find(worked, "wrote 3 thumbnails", "good.jpg")
    assert written["bytes"] > 0 and written["ms"] >= 0 and written["task_id"]
    assert written["keys"] == [f"thumbnails/{s}/good.jpg" for s in ("128x128", "512x512", "1024x1024")]
    assert find(worked, "failed for good", "bad.jpg")["task_id"]
    assert find(worked, "is gone", "missing.jpg")["task_id"]
    # Each pool process says what resizes: the tests install the fast extra, so libvips.
    assert any(re.fullmatch(r"pool process \d+ resizes with libvips 8\.\d+\.\d+", line["message"]) for line in worked)


def test_a_key_with_control_characters_never_forges_a_line_in_the_text_logs(moto_server_url, redis_server, tmp_path):
    forged = "2026-01-01 00:00:00,000 INFO s3thumbs.thumbnailer: wrote 3 thumbnails of x.jpg"
    key = f"evil\n{forged}\r\x1b[2K.jpg"
    env = s3thumbs_env(**empty_redis(redis_server, 9, 10), s3_endpoint_url=moto_server_url, auth_token=TOKEN)
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "logs")
    # No upload: moto's server cannot store a key with a newline (S3 can); the notification alone is
    # enough, and the worker logs that the source is gone.
    receiver_log, worker_log = tmp_path / "receiver.log", tmp_path / "worker.log"
    with receiver(env, receiver_log) as url, worker(env, worker_log) as service:
        response = httpx.post(
            f"{url}/events", json=minio_webhook(bucket, key, None), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 202
        service.wait_log("is gone")

    for log in (receiver_log.read_text(), worker_log.read_text()):
        assert "evil\\n2026-01-01" in log
        assert not any(line.startswith(forged) for line in log.splitlines())
        assert "\x1b" not in log and "\r" not in log
