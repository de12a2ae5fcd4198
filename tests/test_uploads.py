"""A task makes its independent S3 requests at once (the thumbnails PUTs; the first two HEADs), and every
request has ended when the task goes on."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3thumbs.errors import Forbidden
from s3thumbs.storage import NewObject, Storage
from s3thumbs.thumbnailer import make_thumbnails
from tests.support import images
from tests.support.jobs import make_job

OBJECTS = [
    NewObject(f"thumbnails/{n}x{n}/p.jpg", b"x" * n, "image/jpeg", {"s3thumbs-size": f"{n}x{n}"})
    for n in (128, 512, 1024)
]


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
                raise ClientError(
                    {
                        "Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": 403 if code == "AccessDenied" else 500},
                    },
                    "PutObject",
                )
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


def test_head_all_answers_in_order_at_once_with_each_failure_handed_back():
    client = SlowClient(delay=0.2)
    answers = {
        "a.jpg": {"ETag": '"a"', "ContentLength": 1, "Metadata": {}},
        "gone.jpg": ClientError({"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject"),
        "denied.jpg": ClientError(
            {"Error": {"Code": "403"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "HeadObject"
        ),
    }

    def head_object(Bucket: str, Key: str) -> dict[str, Any]:
        client.put_object(Key=Key)  # counts and waits like a request
        if isinstance(answer := answers[Key], Exception):
            raise answer
        return answer

    client.head_object = head_object  # type: ignore[attr-defined]
    found = Storage(client).head_all([("photos", "a.jpg"), ("photos", "gone.jpg"), ("photos", "denied.jpg")])

    assert client.most_at_once == 3
    assert [getattr(f, "etag", f) for f in found[:2]] == ["a", None]
    assert isinstance(found[2], Forbidden)


@pytest.fixture
def slow_reads(mocked_s3):
    """Every GET and HEAD through the test client takes 0.2 s; records how many ran at once."""
    seen = {"running": 0, "most": 0, "requests": []}
    lock = threading.Lock()

    def before(params: dict[str, Any], event_name: str, **_: Any) -> None:
        with lock:
            seen["running"] += 1
            seen["most"] = max(seen["most"], seen["running"])
            seen["requests"].append((event_name.rsplit(".", 1)[-1], params["Key"]))
        time.sleep(0.2)
        with lock:
            seen["running"] -= 1

    for operation in ("GetObject", "HeadObject"):
        mocked_s3.meta.events.register(f"before-parameter-build.s3.{operation}", before)
    return seen


def test_the_source_and_its_manifest_are_looked_at_at_once(mocked_s3, mocked_storage, slow_reads):
    mocked_s3.put_object(Bucket="photos", Key="p.jpg", Body=images.jpeg(300, 200))

    outcome = make_thumbnails(mocked_storage, make_job(), "photos", "p.jpg")

    assert outcome.status == "written"
    assert slow_reads["most"] == 2
    assert sorted(slow_reads["requests"][:2]) == [
        ("GetObject", "p.jpg"),
        ("HeadObject", "thumbnails/manifest/p.jpg.json"),
    ]


def test_a_gone_source_is_gone_even_if_looking_at_its_thumbnail_failed(mocked_s3, mocked_storage):
    def refuse_thumbnails(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].startswith("thumbnails/"):
            raise ClientError(
                {"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "HeadObject"
            )

    mocked_s3.meta.events.register("before-parameter-build.s3.HeadObject", refuse_thumbnails)

    assert make_thumbnails(mocked_storage, make_job(), "photos", "never/uploaded.jpg").status == "gone"
