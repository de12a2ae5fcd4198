from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import boto3
import pytest
from PIL import Image

from s3thumbs.errors import BadImage, Forbidden, SourceChanged
from s3thumbs.imaging import fit
from s3thumbs.keys import Size
from s3thumbs.storage import Storage
from s3thumbs.thumbnailer import delete_thumbnails, make_thumbnails
from tests.support import images
from tests.support.buckets import upload
from tests.support.jobs import SIZES, make_job

BUCKET = "photos"
T = TypeVar("T")
Box = tuple[int, int]
ETAG_META = "s3thumbs-source-etag"
SETTINGS_META = "s3thumbs-settings"


@pytest.fixture
def s3_calls(mocked_s3):
    """The S3 operations made through the client, by name, in order."""
    made: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        made.append(event_name.rsplit(".", 1)[-1])

    mocked_s3.meta.events.register("before-call.s3", record)
    return made


class CountingBody:
    """A GET's body that counts the bytes read from it."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.read_bytes = 0

    def read(self, amount: int | None = None) -> bytes:
        data = self.body.read(amount)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.body.close()


@pytest.fixture
def bodies(mocked_s3):
    """Every GetObject body the client handed out, counting what was read of it."""
    handed: list[CountingBody] = []

    def wrap(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" in parsed:
            handed.append(CountingBody(parsed["Body"]))
            parsed["Body"] = handed[-1]

    mocked_s3.meta.events.register("after-call.s3.GetObject", wrap)
    return handed


def keys_under(s3: Any, prefix: str = "thumbnails/", bucket: str = BUCKET) -> set[str]:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for item in response.get("Contents", [])}


def expected_keys(key: str, sizes: Iterable[Box] = SIZES, prefix: str = "thumbnails/") -> list[str]:
    return [f"{prefix}{w}x{h}/{key}" for w, h in sizes]


def written_keys(key: str, sizes: Iterable[Box] = SIZES, prefix: str = "thumbnails/") -> set[str]:
    """Every size's thumbnail and the manifest."""
    return {*expected_keys(key, sizes, prefix), f"{prefix}manifest/{key}.json"}


def writes(calls: list[str]) -> list[str]:
    return [name for name in calls if name in ("PutObject", "DeleteObject", "DeleteObjects", "CopyObject")]


def decoded(s3: Any, key: str, bucket: str = BUCKET) -> Image.Image:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def before_first(s3: Any, operation: str, action: Callable[[], T], key: str | None = None) -> list[T]:
    """Run ``action`` once, just before the client's first ``operation`` (on ``key``, if given; the
    sizes' PUTs run in threads at once, so the first is decided under a lock); its result lands in
    the list returned."""
    done: list[T] = []
    once = threading.Lock()

    def hook(params: dict[str, Any], **_: Any) -> None:
        with once:
            if not done and key in (None, params.get("Key")):
                done.append(action())

    s3.meta.events.register(f"before-parameter-build.s3.{operation}", hook)
    return done


SOURCES = [
    ("jpeg", "a/photo.jpg", lambda: images.jpeg(800, 600), (800, 600), "image/jpeg"),
    ("phone jpeg", "DCIM/IMG_0001.JPG", images.phone_jpeg, (300, 400), "image/jpeg"),
    ("png with alpha", "art/logo.png", images.rgba_png, (32, 32), "image/png"),
    ("webp", "w/pic.webp", lambda: images.plain("WEBP", 640, 480), (640, 480), "image/webp"),
    ("gif keeps its key", "anim.gif", lambda: images.animated("GIF"), (32, 32), "image/png"),
    ("bmp keeps its key", "old/scan.bmp", lambda: images.plain("BMP", 600, 200), (600, 200), "image/jpeg"),
]


@pytest.mark.parametrize(
    ("key", "source", "shown", "content_type"), [pytest.param(*row[1:], id=row[0]) for row in SOURCES]
)
def test_every_size_is_written_under_its_box_with_type_and_metadata(
    mocked_s3, mocked_storage, key, source, shown, content_type
):
    etag = upload(mocked_s3, BUCKET, key, source())
    job = make_job()

    outcome = make_thumbnails(mocked_storage, job, BUCKET, key)

    assert (outcome.status, outcome.source_etag) == ("written", etag)
    assert keys_under(mocked_s3) == written_keys(key)
    assert [t.key for t in outcome.thumbnails] == expected_keys(key)
    for (w, h), thumb in zip(SIZES, outcome.thumbnails, strict=True):
        head = mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)
        assert head["ContentType"] == content_type == thumb.content_type
        assert head["Metadata"][ETAG_META] == etag
        assert '"' not in head["Metadata"][ETAG_META]
        assert head["Metadata"][SETTINGS_META] == job.spec.fingerprint
        assert "CacheControl" not in head
        assert head["ContentLength"] == thumb.bytes
        assert decoded(mocked_s3, thumb.key).size == fit(shown[0], shown[1], Size(w, h)) == (thumb.width, thumb.height)


def test_cache_control_is_written_when_configured(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))

    outcome = make_thumbnails(
        mocked_storage, make_job(cache_control="public, max-age=31536000, immutable"), BUCKET, "p.jpg"
    )

    for thumb in outcome.thumbnails:
        head = mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)
        assert head["CacheControl"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "key",
    [
        "dir/my photo+1é.jpg",
        "thumbnails.jpg",
        "thumbnails",
        "emoji 📷 plage.png",
        "a?b&c=d#e.jpg",
        "percent%20kept.jpg",
        "tilde~ (1).JPG",
        "double//slash.jpg",
        "deep/a/b/c/d/e.jpeg",
        "日本語/写真.jpg",
    ],
)
def test_keys_round_trip_exactly(mocked_s3, mocked_storage, key):
    upload(mocked_s3, BUCKET, key, images.jpeg(300, 200))

    outcome = make_thumbnails(mocked_storage, make_job(), BUCKET, key)

    assert outcome.key == key
    assert [t.key for t in outcome.thumbnails] == expected_keys(key)
    assert keys_under(mocked_s3) == written_keys(key)


def test_a_second_run_finds_current_thumbnails_and_writes_nothing(mocked_s3, mocked_storage, s3_calls, bodies):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    job = make_job()
    first = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    modified = {k: mocked_s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in keys_under(mocked_s3)}
    s3_calls.clear()

    second = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert second.status == "current"
    assert second.source_etag == first.source_etag
    assert second.thumbnails == first.thumbnails
    assert [body.read_bytes for body in bodies[1:]] == [0]  # its GET's headers only: no download
    assert writes(s3_calls) == []
    assert {k: mocked_s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in keys_under(mocked_s3)} == modified


def test_a_changed_source_is_rendered_again(mocked_s3, mocked_storage, s3_calls):
    job = make_job()
    old_etag = upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    new_etag = upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(600, 800))
    s3_calls.clear()

    outcome = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert new_etag != old_etag
    assert (outcome.status, outcome.source_etag) == ("written", new_etag)
    assert writes(s3_calls) == ["PutObject"] * (len(SIZES) + 1)  # and the manifest, last
    for box, thumb in zip(SIZES, outcome.thumbnails, strict=True):
        assert mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)["Metadata"][ETAG_META] == new_etag
        assert decoded(mocked_s3, thumb.key).size == fit(600, 800, Size(*box))


@pytest.mark.parametrize(
    "changed",
    [
        make_job(quality=60),
        make_job(fmt="png"),
        make_job(sizes=((128, 128), (512, 512))),
        make_job(sizes=(*SIZES, (64, 64))),
    ],
)
def test_changed_settings_render_again(mocked_s3, mocked_storage, s3_calls, changed):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")
    s3_calls.clear()

    outcome = make_thumbnails(mocked_storage, changed, BUCKET, "p.jpg")

    assert outcome.status == "written"
    assert writes(s3_calls) == ["PutObject"] * (len(changed.spec.sizes) + 1)
    for thumb in outcome.thumbnails:
        assert (
            mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)["Metadata"][SETTINGS_META] == changed.spec.fingerprint
        )


def test_a_missing_size_is_rendered_again(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    job = make_job()
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    mocked_s3.delete_object(Bucket=BUCKET, Key="thumbnails/512x512/p.jpg")

    outcome = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert outcome.status == "written"
    assert keys_under(mocked_s3) == written_keys("p.jpg")


def test_a_thumbnail_written_by_someone_else_is_replaced(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    for key in expected_keys("p.jpg"):
        mocked_s3.put_object(Bucket=BUCKET, Key=key, Body=b"not ours", ContentType="image/jpeg")

    outcome = make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")

    assert outcome.status == "written"
    assert decoded(mocked_s3, "thumbnails/128x128/p.jpg").size == (128, 96)


def test_an_output_bucket_receives_the_thumbnails(mocked_s3, mocked_storage, s3_calls):
    mocked_s3.create_bucket(Bucket="thumbs")
    upload(mocked_s3, BUCKET, "dir/p.jpg", images.jpeg(800, 600))
    job = make_job(out_bucket="thumbs")

    first = make_thumbnails(mocked_storage, job, BUCKET, "dir/p.jpg")
    s3_calls.clear()
    second = make_thumbnails(mocked_storage, job, BUCKET, "dir/p.jpg")

    assert first.status == "written"
    assert keys_under(mocked_s3, bucket="thumbs") == written_keys(f"{BUCKET}/dir/p.jpg")
    assert keys_under(mocked_s3, "", BUCKET) == {"dir/p.jpg"}
    assert second.status == "current"
    assert writes(s3_calls) == []


@pytest.mark.parametrize(
    ("job", "bucket", "key"),
    [
        (make_job(), BUCKET, "thumbnails/128x128/p.jpg"),
        (make_job(), BUCKET, "thumbnails/128x128/thumbnails/128x128/p.jpg"),
        (make_job(prefix="previews/"), BUCKET, "previews/512x512/dir/p.jpg"),
        (make_job(out_bucket="thumbs"), "thumbs", "p.jpg"),
        (make_job(out_bucket="thumbs"), "thumbs", "thumbnails/128x128/p.jpg"),
    ],
)
@pytest.mark.parametrize("action", [make_thumbnails, delete_thumbnails])
def test_thumbnails_are_never_sources(mocked_s3, mocked_storage, s3_calls, job, bucket, key, action):
    if bucket != BUCKET:
        mocked_s3.create_bucket(Bucket=bucket)
    upload(mocked_s3, bucket, key, images.jpeg(300, 200))
    before = {b: keys_under(mocked_s3, "", b) for b in {BUCKET, bucket}}
    s3_calls.clear()

    outcome = action(mocked_storage, job, bucket, key)

    assert (outcome.bucket, outcome.key, outcome.status) == (bucket, key, "ignored")
    assert outcome.thumbnails == []
    assert "GetObject" not in s3_calls
    assert writes(s3_calls) == []
    assert {b: keys_under(mocked_s3, "", b) for b in before} == before


@pytest.mark.parametrize("action", [make_thumbnails, delete_thumbnails])
def test_a_bucket_outside_the_allow_list_is_forbidden(mocked_s3, mocked_storage, s3_calls, action):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    s3_calls.clear()

    with pytest.raises(Forbidden, match=BUCKET):
        action(mocked_storage, make_job(buckets=frozenset({"uploads", "other"})), BUCKET, "p.jpg")

    assert s3_calls == []


def test_an_allowed_bucket_is_processed(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))

    outcome = make_thumbnails(mocked_storage, make_job(buckets=frozenset({BUCKET, "other"})), BUCKET, "p.jpg")

    assert outcome.status == "written"


def test_a_missing_source_is_gone_and_nothing_is_written(mocked_s3, mocked_storage, s3_calls):
    outcome = make_thumbnails(mocked_storage, make_job(), BUCKET, "never/uploaded.jpg")

    assert outcome.to_dict() == {
        "bucket": BUCKET,
        "key": "never/uploaded.jpg",
        "status": "gone",
        "source_etag": None,
        "thumbnails": [],
    }
    assert writes(s3_calls) == []
    assert keys_under(mocked_s3, "") == set()


@pytest.mark.parametrize(("slack", "accepted"), [(-1, False), (0, True)])
def test_the_byte_limit_is_checked_before_downloading(mocked_s3, mocked_storage, s3_calls, bodies, slack, accepted):
    data = images.jpeg(800, 600)
    upload(mocked_s3, BUCKET, "p.jpg", data)
    s3_calls.clear()
    job = make_job(max_bytes=len(data) + slack)

    if accepted:
        assert make_thumbnails(mocked_storage, job, BUCKET, "p.jpg").status == "written"
        return
    with pytest.raises(BadImage, match=f"{len(data):,}|{len(data)}"):
        make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    assert [body.read_bytes for body in bodies] == [0]
    assert writes(s3_calls) == []
    assert keys_under(mocked_s3) == set()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(images.truncated(images.jpeg(400, 300)), id="truncated jpeg"),
        pytest.param(images.truncated(images.plain("PNG", 400, 300)), id="truncated png"),
        pytest.param(images.EMPTY, id="empty"),
        pytest.param(images.TEXT, id="text"),
        pytest.param(images.header_only_png(20000, 20000), id="decompression bomb"),
        pytest.param(images.plain("ICO", 32, 32), id="unsupported"),
    ],
)
def test_a_bad_image_fails_and_writes_nothing(mocked_s3, mocked_storage, s3_calls, data):
    upload(mocked_s3, BUCKET, "bad.jpg", data)
    s3_calls.clear()

    with pytest.raises(BadImage):
        make_thumbnails(mocked_storage, make_job(), BUCKET, "bad.jpg")

    assert writes(s3_calls) == []
    assert keys_under(mocked_s3) == set()


def test_pixels_over_the_limit_fail_and_write_nothing(mocked_s3, mocked_storage, s3_calls):
    upload(mocked_s3, BUCKET, "big.jpg", images.jpeg(800, 600))
    s3_calls.clear()

    with pytest.raises(BadImage, match="480,000"):
        make_thumbnails(mocked_storage, make_job(max_pixels=479_999), BUCKET, "big.jpg")

    assert writes(s3_calls) == []


def test_a_source_replaced_before_its_get_renders_the_new_content(mocked_s3, mocked_storage):
    old_etag = upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    other = boto3.client("s3", region_name=mocked_s3.meta.region_name)
    replaced = before_first(mocked_s3, "GetObject", lambda: upload(other, BUCKET, "p.jpg", images.jpeg(600, 800)))

    outcome = make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")

    assert replaced != [old_etag]
    assert (outcome.status, outcome.source_etag) == ("written", replaced[0])
    for box, thumb in zip(SIZES, outcome.thumbnails, strict=True):
        assert mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)["Metadata"][ETAG_META] == replaced[0]
        assert decoded(mocked_s3, thumb.key).size == fit(600, 800, Size(*box))


def test_a_source_replaced_while_it_is_rendered_is_rendered_again_by_the_retry(mocked_s3, mocked_storage):
    """The check after writing catches it: SourceChanged (the task retries), and the retry's
    thumbnails and manifest are the new content's."""
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    other = boto3.client("s3", region_name=mocked_s3.meta.region_name)
    replaced = before_first(mocked_s3, "PutObject", lambda: upload(other, BUCKET, "p.jpg", images.jpeg(600, 800)))

    with pytest.raises(SourceChanged, match="changed from eTag"):
        make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")
    retried = make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")

    assert (retried.status, retried.source_etag) == ("written", replaced[0])
    manifest = json.loads(mocked_s3.get_object(Bucket=BUCKET, Key="thumbnails/manifest/p.jpg.json")["Body"].read())
    assert manifest["source_etag"] == replaced[0]
    for box, thumb in zip(SIZES, retried.thumbnails, strict=True):
        assert mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)["Metadata"][ETAG_META] == replaced[0]
        assert decoded(mocked_s3, thumb.key).size == fit(600, 800, Size(*box))


def test_a_source_deleted_while_it_is_rendered_leaves_nothing(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    other = boto3.client("s3", region_name=mocked_s3.meta.region_name)
    deleted = before_first(mocked_s3, "PutObject", lambda: other.delete_object(Bucket=BUCKET, Key="p.jpg"))

    outcome = make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg")

    assert deleted
    assert outcome.status == "gone"
    assert keys_under(mocked_s3, "") == set()


def test_a_deletion_handled_before_the_manifest_is_written_leaves_no_manifest(mocked_s3, mocked_storage):
    """The check after writing comes after the manifest's PUT: a source deleted, and its deletion
    task done, between the sizes and the manifest would otherwise leave a manifest of nothing."""
    job = make_job()
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    other = boto3.client("s3", region_name=mocked_s3.meta.region_name)

    def delete_and_handle() -> str:
        other.delete_object(Bucket=BUCKET, Key="p.jpg")
        return delete_thumbnails(Storage(other), job, BUCKET, "p.jpg").status

    handled = before_first(mocked_s3, "PutObject", delete_and_handle, key="thumbnails/manifest/p.jpg.json")

    outcome = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert handled == ["deleted"]
    assert outcome.status == "gone"
    assert keys_under(mocked_s3, "") == set()


def test_a_new_upload_costs_one_get_two_heads_and_its_puts(mocked_s3, mocked_storage, s3_calls, bodies):
    """The GET and the manifest's HEAD go at once, then the sizes' PUTs at once, the manifest's
    PUT, and the HEAD that checks the source did not change meanwhile."""
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(800, 600))
    s3_calls.clear()

    assert make_thumbnails(mocked_storage, make_job(), BUCKET, "p.jpg").status == "written"

    assert sorted(s3_calls[:2]) == ["GetObject", "HeadObject"]
    assert s3_calls[2:] == ["PutObject"] * len(SIZES) + ["PutObject", "HeadObject"]
    assert len(bodies) == 1


def test_deleting_a_removed_source_deletes_every_size(mocked_s3, mocked_storage):
    job = make_job()
    for key in ("dir/p.jpg", "dir/p.jpg.orig", "dir/p.jp"):
        upload(mocked_s3, BUCKET, key, images.jpeg(300, 200))
        make_thumbnails(mocked_storage, job, BUCKET, key)
    mocked_s3.delete_object(Bucket=BUCKET, Key="dir/p.jpg")

    outcome = delete_thumbnails(mocked_storage, job, BUCKET, "dir/p.jpg")

    assert (outcome.bucket, outcome.key, outcome.status) == (BUCKET, "dir/p.jpg", "deleted")
    assert keys_under(mocked_s3) == written_keys("dir/p.jpg.orig") | written_keys("dir/p.jp")  # the manifest too


def test_deleting_when_thumbnails_are_already_gone_is_fine(mocked_s3, mocked_storage):
    outcome = delete_thumbnails(mocked_storage, make_job(), BUCKET, "never/there.jpg")

    assert outcome.status == "deleted"


def test_deleting_keeps_thumbnails_of_a_source_that_still_exists(mocked_s3, mocked_storage, s3_calls):
    job = make_job()
    etag = upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    s3_calls.clear()

    outcome = delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert (outcome.status, outcome.source_etag) == ("current", etag)
    assert writes(s3_calls) == []
    assert keys_under(mocked_s3) == written_keys("p.jpg")


def test_deleting_an_old_version_keeps_the_thumbnails_of_the_current_one(mocked_s3, mocked_storage):
    mocked_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    job = make_job()
    old = mocked_s3.put_object(Bucket=BUCKET, Key="p.jpg", Body=images.jpeg(300, 200))["VersionId"]
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(200, 300))
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    mocked_s3.delete_object(Bucket=BUCKET, Key="p.jpg", VersionId=old)

    kept = delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    mocked_s3.delete_object(Bucket=BUCKET, Key="p.jpg")
    removed = delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert kept.status == "current"
    assert removed.status == "deleted"
    assert keys_under(mocked_s3) == set()


def test_a_shared_output_bucket_keeps_each_source_buckets_thumbnails_apart(mocked_s3, mocked_storage):
    mocked_s3.create_bucket(Bucket="thumbs")
    mocked_s3.create_bucket(Bucket="other")
    job = make_job(out_bucket="thumbs")
    upload(mocked_s3, BUCKET, "photo.jpg", images.jpeg(800, 600))
    upload(mocked_s3, "other", "photo.jpg", images.jpeg(600, 800))

    make_thumbnails(mocked_storage, job, BUCKET, "photo.jpg")
    make_thumbnails(mocked_storage, job, "other", "photo.jpg")

    # Neither replaced the other's: each keeps its own picture, in its own folder.
    assert decoded(mocked_s3, f"thumbnails/128x128/{BUCKET}/photo.jpg", "thumbs").size == (128, 96)
    assert decoded(mocked_s3, "thumbnails/128x128/other/photo.jpg", "thumbs").size == (96, 128)

    mocked_s3.delete_object(Bucket="other", Key="photo.jpg")
    assert delete_thumbnails(mocked_storage, job, "other", "photo.jpg").status == "deleted"

    # Deleting the other bucket's photo deleted only its thumbnails.
    assert keys_under(mocked_s3, bucket="thumbs") == written_keys(f"{BUCKET}/photo.jpg")


def test_deleting_uses_the_output_bucket(mocked_s3, mocked_storage):
    mocked_s3.create_bucket(Bucket="thumbs")
    job = make_job(out_bucket="thumbs")
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    mocked_s3.delete_object(Bucket=BUCKET, Key="p.jpg")

    outcome = delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert outcome.status == "deleted"
    assert keys_under(mocked_s3, bucket="thumbs") == set()


def test_the_outcome_has_the_spec_result_shape(mocked_s3, mocked_storage):
    etag = upload(mocked_s3, BUCKET, "dir/my photo+1é.jpg", images.jpeg(800, 600))

    result = make_thumbnails(mocked_storage, make_job(), BUCKET, "dir/my photo+1é.jpg").to_dict()

    assert json.loads(json.dumps(result)) == result
    assert set(result) == {"bucket", "key", "status", "source_etag", "thumbnails"}
    assert (result["bucket"], result["key"], result["status"], result["source_etag"]) == (
        BUCKET,
        "dir/my photo+1é.jpg",
        "written",
        etag,
    )
    assert [set(t) for t in result["thumbnails"]] == [{"key", "width", "height", "bytes", "content_type"}] * 3
    assert [(t["key"], t["width"], t["height"], t["content_type"]) for t in result["thumbnails"]] == [
        ("thumbnails/128x128/dir/my photo+1é.jpg", 128, 96, "image/jpeg"),
        ("thumbnails/512x512/dir/my photo+1é.jpg", 512, 384, "image/jpeg"),
        ("thumbnails/1024x1024/dir/my photo+1é.jpg", 800, 600, "image/jpeg"),
    ]
    for thumb in result["thumbnails"]:
        assert thumb["bytes"] == mocked_s3.head_object(Bucket=BUCKET, Key=thumb["key"])["ContentLength"] > 0


@pytest.mark.parametrize("status", ["current", "deleted"])
def test_other_outcomes_have_the_spec_result_shape(mocked_s3, mocked_storage, status):
    job = make_job()
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    written = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg").to_dict()
    if status == "current":
        result = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg").to_dict()
        assert result == {**written, "status": "current"}
    else:
        mocked_s3.delete_object(Bucket=BUCKET, Key="p.jpg")
        result = delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg").to_dict()
        assert result == {"bucket": BUCKET, "key": "p.jpg", "status": "deleted", "source_etag": None, "thumbnails": []}
    assert json.loads(json.dumps(result)) == result
