"""A task's thumbnails are uploaded at once, and every upload has ended when the task goes on."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3thumbs.errors import Forbidden
from s3thumbs.storage import NewObject, Storage

OBJECTS = [NewObject(f"thumbnails/{n}x{n}/p.jpg", b"x" * n, "image/jpeg", {"s3thumbs-size": f"{n}x{n}"})
           for n in (128, 512, 1024)]


class SlowClient:
    """A stand-in for boto3's client: each put_object takes a while and is recorded."""

    def __init__(self, delay: float = 0.2, fail: dict[str, str] | None = None) -> None:
        self.delay = delay
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.finished: list[str] = []

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.delay)
            if (code := self.fail.get(kwargs["Key"])) is not None:
                raise ClientError({"Error": {"Code": code, "Message": code},
                                   "ResponseMetadata": {"HTTPStatusCode": 403 if code == "AccessDenied" else 500}},
                                  "PutObject")
            return {}
        finally:
            with self.lock:
                self.running -= 1
                self.finished.append(kwargs["Key"])


def test_the_sizes_are_uploaded_at_once():
    client = SlowClient(delay=0.3)
    started = time.perf_counter()

    Storage(client).put_all("photos", OBJECTS, "max-age=60")

    assert client.most_at_once == len(OBJECTS)
    assert sorted(client.finished) == sorted(o.key for o in OBJECTS)
    assert time.perf_counter() - started < 0.3 * len(OBJECTS)


def test_one_thread_uploads_one_after_another():
    client = SlowClient(delay=0.05)

    Storage(client, upload_threads=1).put_all("photos", OBJECTS)

    assert client.most_at_once == 1
    assert client.finished == [o.key for o in OBJECTS]


def test_a_failed_upload_is_raised_once_the_others_have_ended():
    client = SlowClient(delay=0.1, fail={OBJECTS[0].key: "InternalError"})

    with pytest.raises(ClientError, match="InternalError"):
        Storage(client).put_all("photos", OBJECTS)

    assert client.running == 0
    assert sorted(client.finished) == sorted(o.key for o in OBJECTS)


def test_the_first_failure_in_order_is_the_one_raised_and_keeps_its_meaning():
    client = SlowClient(delay=0.05, fail={OBJECTS[1].key: "AccessDenied", OBJECTS[2].key: "InternalError"})

    with pytest.raises(Forbidden, match="AccessDenied"):
        Storage(client).put_all("photos", OBJECTS)


def test_a_forked_child_gets_a_pool_of_its_own():
    storage = Storage(SlowClient(delay=0))
    storage.put_all("photos", OBJECTS)
    parent_pool = storage._uploads
    storage._uploads_pid = -1  # as after a fork: the parent's threads do not exist in the child

    storage.put_all("photos", OBJECTS)

    assert storage._uploads is not parent_pool
