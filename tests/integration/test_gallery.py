"""The gallery on a real status store: what the receiver shows at ``/``, and the page in a headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from s3thumbs.cli.wiring import receiver_app
from s3thumbs.config import Secret, Settings
from s3thumbs.gallery import Gallery
from s3thumbs.keys import Layout
from s3thumbs.links import CACHE_CONTROL, Links
from s3thumbs.receiver import create_app
from s3thumbs.redisbackend import RECENT, RECORD_PREFIX, StatusStore
from s3thumbs.rules import Rules
from s3thumbs.status import InProcessStatuses, Record
from tests.support import images, phone
from tests.support.buckets import fresh_bucket, notify_through_sns, s3_client
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env, wait_for, worker
from tests.support.publishing import Recorded
from tests.support.servers import in_ci

TOKEN = "gallery-secret"
SENDER_TOKEN = "sender-secret"
CHROMIUM = "/usr/bin/chromium"
# Where the browser test leaves its screenshot for the README, when asked to.
SCREENSHOT_ENV = "S3THUMBS_GALLERY_SCREENSHOT"


def presign(bucket: str, key: str) -> str:
    return f"https://signed.example/{bucket}/{key}?X-Amz-Signature=abc"


@pytest.fixture
def gallery_status_store(redis_factory):
    return StatusStore.from_backend(redis_factory().url_for(1))


def client(store, token: str | None = TOKEN, base_url: str = "http://testserver") -> TestClient:
    gallery = Gallery(store, Links(presign), Layout())
    return TestClient(create_app(Recorded(), token=SENDER_TOKEN, gallery_token=token, gallery=gallery), base_url)


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ["/", "/gallery.json"])
def test_the_gallery_sits_behind_the_token_as_http_basic(gallery_status_store, path):
    with client(gallery_status_store) as http:
        refused = http.get(path)
        wrong = http.get(path, headers=basic("nope"))
        allowed = http.get(path, headers=basic(TOKEN))

    assert refused.status_code == wrong.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert allowed.status_code == 200


def test_without_a_token_the_gallery_is_open_to_loopback_names(gallery_status_store):
    with client(gallery_status_store, token=None, base_url="http://127.0.0.1:8080") as http:
        page = http.get("/")

    assert page.status_code == 200
    assert "gallery.json" in page.text and "<script>" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text


def test_the_json_lists_recent_objects_with_presigned_urls(gallery_status_store):
    thumbs = ({"key": "thumbnails/128x128/a b.jpg", "width": 128, "height": 96, "bytes": 4000},)
    gallery_status_store.save(
        [
            Record("photos", "a b.jpg", "written", etag="e", size=5000, thumbnails=thumbs, ms=12.0, at=1.0),
            Record("photos", "bad.jpg", "failed", reason="not an image", at=2.0),
        ]
    )

    with client(gallery_status_store) as http:
        body = http.get("/gallery.json", headers=basic(TOKEN)).json()

    assert body["message"] is None
    failed, written = body["items"]
    assert (failed["key"], failed["status"], failed["reason"]) == ("bad.jpg", "failed", "not an image")
    assert written["original"] == presign("photos", "a b.jpg") and written["inline"] is True
    assert written["thumbnails"][0]["url"] == presign("photos", "thumbnails/128x128/a b.jpg")
    assert (written["ms"], written["size"]) == (12.0, 5000)


def browser_or_fail() -> str:
    if not shutil.which(CHROMIUM):
        if in_ci():
            pytest.fail(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


def test_the_page_shows_a_processed_upload_with_its_thumbnails_in_chromium(moto_server_url, redis_factory, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = browser_or_fail()
    server = redis_factory()
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        auth_token=SENDER_TOKEN,
        gallery_token=TOKEN,
        s3_endpoint_url=moto_server_url,
        sizes="320x320,96x96",
    )
    s3 = s3_client(moto_server_url)

    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        notify_through_sns(moto_server_url, "gallery", url.replace("://", f"://sns:{SENDER_TOKEN}@") + "/events")
        s3.put_object(Bucket="gallery", Key="holiday photo ü.jpg", Body=images.jpeg(1200, 800))
        s3.put_object(Bucket="gallery", Key="iPhone.HEIC", Body=phone.oriented_heic(800, 1200, 6))
        s3.put_object(Bucket="gallery", Key="portrait.avif", Body=phone.oriented_avif(800, 1200, 8))
        s3.put_object(Bucket="gallery", Key="broken.jpg", Body=b"not a photo at all")
        with sync_playwright() as playwright:
            # The password given at the browser's prompt, then in the address (http://viewer:TOKEN@host/).
            prompted = show_gallery(playwright, chromium, tmp_path / "prompted", url + "/", password=TOKEN)
            in_url = show_gallery(
                playwright, chromium, tmp_path / "in-url", url.replace("://", f"://me:{TOKEN}@") + "/"
            )

    for sizes, reason, shot in (prompted, in_url):
        assert sorted(sizes["holiday photo ü.jpg"]) == [[96, 64], [320, 213]]
        # Upright, as the browser decoded them (a JPEG from the HEIC, an AVIF from the AVIF).
        assert sorted(sizes["iPhone.HEIC"]) == sorted(sizes["portrait.avif"]) == [[64, 96], [213, 320]]
        assert "cannot decode image" in reason or "not an image" in reason
        with Image.open(shot) as screenshot:
            assert screenshot.size[0] == 1100
    if target := os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(prompted[2], Path(target))


def show_gallery(playwright, chromium: str, profile: Path, address: str, password: str | None = None):
    """Open the gallery in a fresh headless Chromium; once both uploads are done, return the rendered
    thumbnails' sizes, the failed upload's reason and a screenshot."""
    # A fresh profile directory: playwright passes it as Chromium's --user-data-dir.
    browser = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
        http_credentials={"username": "me", "password": password} if password else None,
        viewport={"width": 1100, "height": 700},
    )
    try:
        page = browser.new_page()
        page.goto(address)
        page.locator('section.item[data-key="broken.jpg"] .badge[data-status="failed"]').wait_for(timeout=30_000)
        sizes = {}
        # Each original and both its thumbnails, loaded through presigned URLs; the HEIC original,
        # which Chromium cannot show, as a link.
        for key, pictures in (("holiday photo ü.jpg", 3), ("iPhone.HEIC", 2), ("portrait.avif", 3)):
            item = page.locator(f'section.item[data-key="{key}"]')
            item.locator('.badge[data-status="written"]').wait_for(timeout=30_000)
            page.wait_for_function(
                "([key, count]) => {"
                " const imgs = [...document.querySelectorAll(`section.item[data-key='${key}'] img`)];"
                " return imgs.length === count && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                arg=[key, pictures],
                timeout=30_000,
            )
            sizes[key] = item.locator(".thumbs img").evaluate_all(
                "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"
            )
        assert page.locator('section.item[data-key="iPhone.HEIC"] .original a').inner_text().startswith("original")
        # Each thumbnail sits on its source's ThumbHash placeholder until it loads.
        backgrounds = page.locator(".thumbs img").evaluate_all("imgs => imgs.map(i => i.style.backgroundImage)")
        assert backgrounds and all(b.startswith('url("data:image/png;base64,') for b in backgrounds), backgrounds
        reason = page.locator('section.item[data-key="broken.jpg"] .reason').inner_text()
        shot = profile.with_suffix(".png")
        page.screenshot(path=str(shot), full_page=True)
    finally:
        browser.close()
    return sizes, reason, shot


def test_uploads_the_receiver_skipped_are_shown_with_their_reason(gallery_status_store):
    app = create_app(Recorded(), rules=Rules(buckets=frozenset({"photos"})), statuses=gallery_status_store)
    with TestClient(app) as http:
        for bucket, key in [("elsewhere", "cat.jpg"), ("photos", "thumbnails/128x128/dog.jpg")]:
            assert http.post("/events", json=minio_webhook(bucket, key, "e")).status_code == 200

    [record] = wait_for(gallery_status_store.recent, 5, "the skipped record, written in the background")
    assert (record.bucket, record.key, record.status) == ("elsewhere", "cat.jpg", "skipped")
    assert "S3THUMBS_BUCKETS" in record.reason


def test_one_record_the_gallery_cannot_read_leaves_the_others_shown(gallery_status_store):
    gallery_status_store.save([Record("photos", "fine.jpg", "written", etag="e", at=1.0)])
    redis = gallery_status_store.client
    for member, text in [
        ("photos/garbled.jpg", b"{not json"),
        ("photos/list.jpg", b"[1, 2]"),
        ("photos/unknown.jpg", json.dumps({"bucket": "photos", "key": "unknown.jpg", "colour": "red"}).encode()),
        ("photos/missing.jpg", json.dumps({"bucket": "photos"}).encode()),
        ("photos/binary.jpg", b"\xff\xfe"),
        ("photos/typed.jpg", json.dumps({"bucket": 1, "key": 2, "status": 3, "thumbnails": [4]}).encode()),
    ]:
        redis.set(RECORD_PREFIX + member, text)
        redis.zadd(RECENT, {member: 2.0})

    with client(gallery_status_store) as http:
        response = http.get("/gallery.json", headers=basic(TOKEN))

    assert response.status_code == 200
    assert [item["key"] for item in response.json()["items"]] == ["fine.jpg"]


def test_links_survive_refreshes_and_s3_tells_the_browser_to_keep_the_images(moto_server_url):
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "links")
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=b"original")
    s3.put_object(Bucket=bucket, Key="thumbnails/64x64/a.jpg", Body=b"thumbnail")
    store = InProcessStatuses()
    thumbs = ({"key": "thumbnails/64x64/a.jpg", "width": 64, "height": 48, "bytes": 9},)
    store.save([Record(bucket, "a.jpg", "written", etag="e", thumbnails=thumbs)])
    settings = Settings(
        broker_url="memory://", result_backend=None, s3_endpoint_url=moto_server_url, gallery_token=Secret(TOKEN)
    )

    with TestClient(receiver_app(settings, store)) as http:
        first = http.get("/gallery.json", headers=basic(TOKEN)).json()["items"][0]
        time.sleep(1.1)  # a link signed a second later would differ
        again = http.get("/gallery.json", headers=basic(TOKEN)).json()["items"][0]

    links = [first["original"], first["thumbnails"][0]["url"]]
    assert links == [again["original"], again["thumbnails"][0]["url"]]
    for link, body in zip(links, (b"original", b"thumbnail"), strict=True):
        response = httpx.get(link, timeout=10)
        assert (response.status_code, response.content) == (200, body)
        assert response.headers["Cache-Control"] == CACHE_CONTROL
