"""S3THUMBS_RULES: each key gets the sizes of its longest matching prefix, or none, everywhere."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from s3thumbs.config import ConfigError, Settings
from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Layout, Size
from s3thumbs.prefixes import SizeRules, parse_rules
from s3thumbs.receiver import create_app
from s3thumbs.rules import Rules
from s3thumbs.thumbnailer import Job, delete_thumbnails, make_thumbnails
from tests.support import images
from tests.support.backfill import enqueued, plan, upload
from tests.support.buckets import upload as put
from tests.support.notifications import minio_webhook
from tests.support.publishing import Recorded

DEFAULT = (Size(128, 128), Size(512, 512))
RULES = "avatars/=64x64:cover ; avatars/big/=256x256:cover,32x32:cover;raw/="


def test_the_longest_matching_prefix_wins_and_an_empty_rule_means_none():
    rules = SizeRules(DEFAULT, parse_rules(RULES))

    assert rules.sizes_for("avatars/u1.jpg") == (Size(64, 64, "cover"),)
    assert rules.sizes_for("avatars/big/u1.jpg") == (Size(256, 256, "cover"), Size(32, 32, "cover"))
    assert rules.sizes_for("raw/scan.tif") == ()
    assert rules.sizes_for("photos/a.jpg") == rules.sizes_for("avatarsX.jpg") == DEFAULT


@pytest.mark.parametrize(
    ("value", "message"),
    [("avatars/", "PREFIX=SIZES"), ("a/=64x64;a/=32x32", "twice"), ("a/=64", "WxH"), ("a/=64x64:fill", "WxH")],
)
def test_a_malformed_rule_stops_the_process_naming_the_variable(value, message):
    with pytest.raises(ConfigError, match=rf"S3THUMBS_RULES.*{message}"):
        Settings.from_env({"S3THUMBS_RULES": value})


def job(out_bucket: str | None = None) -> Job:
    spec = RenderSpec(DEFAULT)
    return Job(spec, Layout("thumbnails/", out_bucket), 10_000_000, rules=SizeRules(DEFAULT, parse_rules(RULES)))


def written(s3, bucket: str = "photos") -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="thumbnails/").get("Contents", [])}


def test_each_key_is_rendered_with_its_prefixs_sizes_and_settings_hash(mocked_s3, mocked_storage):
    put(mocked_s3, "photos", "avatars/big/u1.jpg", images.jpeg(300, 200))
    put(mocked_s3, "photos", "photos/a.jpg", images.jpeg(300, 200))

    avatar = make_thumbnails(mocked_storage, job(), "photos", "avatars/big/u1.jpg")
    photo = make_thumbnails(mocked_storage, job(), "photos", "photos/a.jpg")

    assert [(t.width, t.height) for t in avatar.thumbnails] == [(200, 200), (32, 32)]
    assert [(t.width, t.height) for t in photo.thumbnails] == [(128, 85), (300, 200)]
    assert avatar.manifest is not None and photo.manifest is not None
    assert avatar.manifest["settings"] == RenderSpec((Size(256, 256, "cover"), Size(32, 32, "cover"))).fingerprint
    assert photo.manifest["settings"] == RenderSpec(DEFAULT).fingerprint
    assert written(mocked_s3) == {
        "thumbnails/256x256/avatars/big/u1.jpg",
        "thumbnails/32x32/avatars/big/u1.jpg",
        "thumbnails/manifest/avatars/big/u1.jpg.json",
        "thumbnails/128x128/photos/a.jpg",
        "thumbnails/512x512/photos/a.jpg",
        "thumbnails/manifest/photos/a.jpg.json",
    }


def test_a_key_under_an_empty_rule_gets_nothing_not_even_a_download(mocked_s3, mocked_storage):
    put(mocked_s3, "photos", "raw/scan.jpg", images.jpeg(300, 200))
    calls: list[str] = []
    mocked_s3.meta.events.register("before-call.s3", lambda event_name, **_: calls.append(event_name))

    outcome = make_thumbnails(mocked_storage, job(), "photos", "raw/scan.jpg")

    assert outcome.status == "ignored"
    assert calls == []
    assert written(mocked_s3) == set()


def test_a_delete_removes_what_any_rule_made(mocked_s3, mocked_storage):
    for size in ("64x64", "128x128"):  # made under earlier rules
        mocked_s3.put_object(Bucket="photos", Key=f"thumbnails/{size}/avatars/u1.jpg", Body=b"t")

    assert delete_thumbnails(mocked_storage, job(), "photos", "avatars/u1.jpg").status == "deleted"
    assert written(mocked_s3) == set()


def test_the_receiver_skips_keys_that_get_no_thumbnails():
    published_events = Recorded()
    client = TestClient(create_app(published_events, rules=Rules(sizes=SizeRules(DEFAULT, parse_rules(RULES)))))

    skipped = client.post("/events", json=minio_webhook("photos", "raw/scan.jpg")).json()["skipped"]
    accepted = client.post("/events", json=minio_webhook("photos", "avatars/u1.jpg"))

    assert [s["reason"] for s in skipped] == ["no thumbnails under this prefix (S3THUMBS_RULES)"]
    assert accepted.status_code == 202
    assert [e.key for e in published_events] == ["avatars/u1.jpg"]


def test_backfill_judges_each_key_by_its_own_sizes_and_ignores_empty_prefixes(mocked_s3, mocked_storage):
    backfill = plan(mocked_storage, rules=(("raw/", ()), ("one/", (Size(16, 16),))))
    etag = upload(mocked_s3, "one/a.png")
    made_with = {"s3thumbs-source-etag": etag, "s3thumbs-settings": RenderSpec((Size(16, 16),)).fingerprint}
    for done in ("thumbnails/16x16/one/a.png", "thumbnails/manifest/one/a.png.json"):
        mocked_s3.put_object(Bucket="photos", Key=done, Body=b"t", Metadata=made_with)
    upload(mocked_s3, "one/b.png")
    upload(mocked_s3, "raw/never.png")

    summary, keys = enqueued(backfill)

    assert keys == ["one/b.png"]
    assert (summary.sources, summary.current, summary.missing) == (2, 1, 1)
