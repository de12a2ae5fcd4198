"""The whole pipeline on the real stores: Ceph RGW 16.2 and SeaweedFS 4.48.

Uploads go to the store with boto3; the store itself notifies a real receiver subprocess (Ceph through a
topic made by ``s3thumbs notify --push-endpoint``, SeaweedFS through its filer webhook); a real worker
subprocess reads the original from the store and writes the thumbnails back; Redis is private. One
pipeline per store serves the module (``tests/support/pipelines.py``), each test in a bucket of its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from tests.support import images
from tests.support.pipelines import (
    DELIVERY_TIMEOUT,
    SIZES,
    Pipeline,
    etag_of,
    http_connection_refused,
    json_lines,
    multipart_upload,
)
from tests.support.processes import wait_for, worker
from tests.support.rendering import assert_upright
from tests.support.servers import free_port
from tests.support.stores import CephRGW, SeaweedFS

# What each box makes of an upright 3:2 picture (300x200 and larger) and of a 2:3 one (200x300).
# A private Ceph RGW and SeaweedFS each, started and driven end to end: a minute together, so with the
# slow tests (CI runs both).
pytestmark = pytest.mark.slow

LANDSCAPE = {"64x64": (64, 43), "256x256": (256, 171)}
PORTRAIT = {"64x64": (43, 64), "256x256": (171, 256)}
AWKWARD_KEYS = (
    "photos/summer trip 2026.jpg",
    "plus+sign+1.jpg",
    "100% real%20percent%2F.jpg",
    "ünïcødé/雪 é.jpg",
    "all of it/a b+c%2Bd é 雪.jpeg",
)
PART = 5 * 1024 * 1024
OWN_OUTPUT = "a thumbnail (output prefix or bucket)"
# Seconds between reconciliations in the lost-event test: short, since it waits for one.
RECONCILE_INTERVAL = 5


@pytest.fixture(scope="module", params=["ceph_rgw", "seaweedfs"])
def pipeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Receiver and worker on one real store, for the module's tests on that store."""
    store: CephRGW | SeaweedFS = request.getfixturevalue(request.param)
    with Pipeline.running(store, tmp_path_factory.mktemp(f"pipeline-{request.param}")) as running:
        yield running


def upload(pipeline: Pipeline, bucket: str, key: str, body: bytes) -> str:
    """PUT ``body`` with boto3; its eTag."""
    return etag_of(pipeline.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg"))


def sizes_of(thumbnails: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {size: thumb.image.size for size, thumb in thumbnails.items()}


def big_photo() -> bytes:
    """A 3:2 noise JPEG over one 5 MiB part (about 8 MiB), so that it is uploaded in two parts."""
    noise = Image.merge("RGB", [Image.effect_noise((2100, 1400), 120) for _ in range(3)])
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=97, subsampling=0)
    assert len(buffer.getvalue()) > PART
    return buffer.getvalue()


def test_keys_with_spaces_plus_percent_and_unicode_get_their_thumbnails(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("keys")
    body = images.jpeg(300, 200)
    etags = {key: upload(pipeline, bucket, key, body) for key in AWKWARD_KEYS}

    for key, etag in etags.items():
        thumbnails = pipeline.wait_thumbnails(bucket, key, etag)
        assert sizes_of(thumbnails) == LANDSCAPE, key
        assert all(thumb.content_type == "image/jpeg" for thumb in thumbnails.values())
    # The receiver took each key as the store sent it: no "+" read as a space, no "%2F" decoded.
    assert sorted(pipeline.published(bucket)) == sorted(AWKWARD_KEYS)
    assert pipeline.thumbnails_listed(bucket) == sorted(
        out for key in AWKWARD_KEYS for out in pipeline.output_keys(key)
    )


def test_a_multipart_upload_gets_its_thumbnails(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("multipart")
    key = "big uploads/ü+multi part.jpg"
    multipart_upload(pipeline.s3, bucket, key, big_photo(), PART)
    head = pipeline.head(bucket, key)
    assert head is not None
    etag = etag_of(head)
    assert etag.endswith("-2")

    thumbnails = pipeline.wait_thumbnails(bucket, key, etag)

    assert sizes_of(thumbnails) == LANDSCAPE
    assert pipeline.published(bucket) == [key]  # the parts themselves never became tasks
    assert pipeline.thumbnails_listed(bucket) == sorted(pipeline.output_keys(key))


def test_a_rotated_photo_comes_out_upright_at_its_displayed_size(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("exif")
    key = "phone/IMG 0006.jpg"
    body = images.jpeg(300, 200, orientation=6)  # stored 200x300, displayed 300x200
    assert Image.open(io.BytesIO(body)).size == (200, 300)

    thumbnails = pipeline.wait_thumbnails(bucket, key, upload(pipeline, bucket, key, body))

    assert sizes_of(thumbnails) == LANDSCAPE
    for thumb in thumbnails.values():
        assert_upright(thumb.image)
        assert thumb.image.getexif().get(274) in (None, 1)  # no orientation left for a viewer to apply twice


def test_an_overwrite_renders_the_new_content(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("overwrite")
    key = "cover photo.jpg"
    first = upload(pipeline, bucket, key, images.jpeg(300, 200))
    assert sizes_of(pipeline.wait_thumbnails(bucket, key, first)) == LANDSCAPE

    second = upload(pipeline, bucket, key, images.jpeg(200, 300))
    thumbnails = pipeline.wait_thumbnails(bucket, key, second)

    assert second != first
    assert sizes_of(thumbnails) == PORTRAIT
    for thumb in thumbnails.values():
        assert thumb.metadata["s3thumbs-source-etag"] == second
        assert_upright(thumb.image)
    assert pipeline.published(bucket) == [key, key]


def test_a_delete_removes_every_thumbnail(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("delete")
    key = "to be deleted/ä+b.jpg"
    kept = "kept.jpg"
    pipeline.wait_thumbnails(bucket, key, upload(pipeline, bucket, key, images.jpeg(300, 200)))
    pipeline.wait_thumbnails(bucket, kept, upload(pipeline, bucket, kept, images.jpeg(300, 200)))

    pipeline.s3.delete_object(Bucket=bucket, Key=key)

    wait_for(
        lambda: pipeline.thumbnails_listed(bucket) == sorted(pipeline.output_keys(kept)),
        DELIVERY_TIMEOUT,
        f"the thumbnails of s3://{bucket}/{key} to go, and only them",
    )
    assert all(pipeline.head(bucket, output) is None for output in pipeline.output_keys(key))
    removed = [line for line in pipeline.worker_lines(bucket) if "was removed" in line["message"]]
    assert [line["key"] for line in removed] == [key]


def test_the_store_notifies_the_thumbnails_and_they_are_skipped_never_rendered(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("loop")
    key = "loop/photo.jpg"
    own_output_before = pipeline.metric('s3thumbs_events_skipped_total{reason="own_output"}')
    etag = upload(pipeline, bucket, key, images.jpeg(300, 200))
    pipeline.wait_thumbnails(bucket, key, etag)
    thumbnail_keys = pipeline.output_keys(key)  # the manifest too

    # The store did tell the receiver about each thumbnail the worker wrote; each was skipped as our output.
    wait_for(
        lambda: all(OWN_OUTPUT in pipeline.skipped(bucket).get(thumb, []) for thumb in thumbnail_keys),
        DELIVERY_TIMEOUT,
        "the receiver to skip every thumbnail's event",
    )
    assert pipeline.metric('s3thumbs_events_skipped_total{reason="own_output"}') >= own_output_before + len(
        thumbnail_keys
    )
    # Every event about a thumbnail has been answered: nothing further can come of them.
    assert pipeline.published(bucket) == [key]
    assert pipeline.thumbnails_listed(bucket) == sorted(pipeline.output_keys(key))
    written = [line for line in pipeline.worker_lines(bucket) if "thumbnails (" in line["message"]]
    assert [line["key"] for line in written] == [key]


def test_the_gallery_links_open_the_images_on_the_store(pipeline: Pipeline) -> None:
    bucket = pipeline.bucket("gallery")
    key = "shown/a b+c é.jpg"
    body = images.jpeg(300, 200)
    thumbnails = pipeline.wait_thumbnails(bucket, key, upload(pipeline, bucket, key, body))

    def shown() -> dict[str, Any] | None:
        items = pipeline.gallery()["items"]
        found = [item for item in items if (item["bucket"], item["key"]) == (bucket, key)]
        return found[0] if found and found[0]["status"] == "written" else None

    item = wait_for(shown, DELIVERY_TIMEOUT, "the upload in the gallery as written")
    assert isinstance(item, dict)
    assert item["original"].startswith(pipeline.store.endpoint_url + "/")
    original = httpx.get(item["original"], timeout=30)
    assert original.status_code == 200, original.text
    assert original.content == body
    links = {thumb["key"]: thumb["url"] for thumb in item["thumbnails"]}
    assert set(links) == {thumb.key for thumb in thumbnails.values()}
    for thumb in thumbnails.values():
        answer = httpx.get(links[thumb.key], timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.content == thumb.body
        assert Image.open(io.BytesIO(answer.content)).size == thumb.image.size
    # A presigned link is good for that object only: the signature does not open another one.
    forged = httpx.get(item["original"].replace("/shown/", "/other/"), timeout=30)
    assert forged.status_code == 403


def store_log_lines(pipeline: Pipeline) -> list[str]:
    """What the store logs about its deliveries: radosgw's log, or the filer's."""
    store = pipeline.store
    path = store.log_path if isinstance(store, CephRGW) else store.log_paths["filer"]
    return path.read_text(errors="replace").splitlines()


def dropped(pipeline: Pipeline, bucket: str, key: str, since: int) -> str | None:
    """The store's log line, from line ``since`` on, saying that it could not deliver the event of ``key``.

    radosgw logs the failure inside the PUT's request, just before that request's access line; the filer
    logs the event it dropped ("dead letter") with its path.
    """
    lines = store_log_lines(pipeline)[since:]
    if isinstance(pipeline.store, CephRGW):
        failure = f"s3:put_obj ERROR: push to endpoint {pipeline.push_endpoint} failed"
        access = f'"PUT /{bucket}/{quote(key, safe="/~")} HTTP/1.1" 200'
        for number, line in enumerate(lines):
            if failure in line:
                request = next((later for later in lines[number + 1 :] if " beast: " in later), "")
                if access in request:
                    return line
        return None
    path = f"/buckets/{bucket}/{key}"
    return next((line for line in lines if "received dead letter message" in line and line.endswith(path)), None)


def test_reconciliation_renders_an_upload_whose_notification_the_store_dropped(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The receiver is down during an upload; the store tries once, logs the failure and drops the event.

    The reconciler is one worker started with ``--beat`` once the event is lost, on a broker database of its
    own: the thumbnails it writes can only come from a reconciliation, never from the receiver's queue.
    """
    bucket = pipeline.bucket("lost")
    notified, lost = "notified.jpg", "while the receiver was down/lost é+1.jpg"
    pipeline.wait_thumbnails(bucket, notified, upload(pipeline, bucket, notified, images.jpeg(300, 200)))

    with pipeline.receiver_down():
        assert http_connection_refused(pipeline.store_target_port)
        since = len(store_log_lines(pipeline))
        etag = upload(pipeline, bucket, lost, images.jpeg(300, 200))
        evidence = wait_for(lambda: dropped(pipeline, bucket, lost, since), DELIVERY_TIMEOUT, "the store's failed push")
    print(f"{pipeline.store.name} dropped the event: {evidence}")

    # The receiver is back; the store never sends that event again, and nothing else can render the upload.
    assert all(pipeline.head(bucket, pipeline.thumbnail_key(lost, size)) is None for size in SIZES)
    reconciler_env = {
        **pipeline.env,
        "S3THUMBS_BROKER_URL": pipeline.redis.url_for(2),
        "S3THUMBS_RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
        "S3THUMBS_BUCKETS": bucket,
        "S3THUMBS_METRICS_PORT": str(free_port()),
        "TMPDIR": str(tmp_path),
    }
    with worker(reconciler_env, tmp_path / "reconciler.log", "--beat") as reconciler:
        thumbnails = pipeline.wait_thumbnails(bucket, lost, etag, timeout=3 * RECONCILE_INTERVAL + DELIVERY_TIMEOUT)

    assert sizes_of(thumbnails) == LANDSCAPE
    messages = [(line.get("key"), line["message"]) for line in json_lines(reconciler.log_path)]
    found = f"reconciled s3://{bucket}: 2 images: 1 current, 1 missing, 0 stale, 0 failed for good; enqueued 1"
    reconciled = [number for number, (_, message) in enumerate(messages) if message == found]
    written = [number for number, (key, message) in enumerate(messages) if key == lost and "thumbnails (" in message]
    assert reconciled and written, messages
    assert reconciled[0] < written[0]
    # Neither the receiver nor the pipeline's own worker ever heard of the lost upload.
    assert lost not in pipeline.published(bucket) and lost not in pipeline.skipped(bucket)
    assert all(line["key"] != lost for line in pipeline.worker_lines(bucket))
