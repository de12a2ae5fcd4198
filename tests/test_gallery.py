"""The gallery as ``s3thumbs receiver`` builds it: who may open it, what it links to, and what it survives.

The receiver comes from the composition root (``receiver_app``) with its real presigner: botocore signs
locally, so no S3 is needed to read the links it hands out.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from s3thumbs.cli.wiring import receiver_app
from s3thumbs.config import Secret, Settings
from s3thumbs.gallery import NO_STORE, Gallery
from s3thumbs.keys import Layout
from s3thumbs.links import CACHE_CONTROL, LIFETIME, Links
from s3thumbs.receiver import create_app
from s3thumbs.status import InProcessStatuses, Record
from tests.support.notifications import s3_test_event
from tests.support.publishing import Recorded

SENDER_TOKEN = "sender-secret"
GALLERY_TOKEN = "gallery-secret"
SETTINGS = Settings(
    broker_url="memory://",
    result_backend=None,
    s3_endpoint_url="http://s3.test:9000",
    buckets=frozenset({"photos"}),
    auth_token=Secret(SENDER_TOKEN),
    gallery_token=Secret(GALLERY_TOKEN),
)
LOOPBACK = "http://127.0.0.1:8080"


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"viewer:{password}".encode()).decode()}


def gallery(store, *, loopback: bool = False, base_url: str = "http://thumbs.example", **settings) -> TestClient:
    return TestClient(receiver_app(dataclasses.replace(SETTINGS, **settings), store, loopback=loopback), base_url)


def thumb(key: str) -> dict:
    return {"key": key, "width": 128, "height": 96, "bytes": 4000}


def items(store, **settings) -> dict[str, dict]:
    with gallery(store, **settings) as http:
        response = http.get("/gallery.json", headers=basic(GALLERY_TOKEN))
    assert response.status_code == 200
    return {item["key"]: item for item in response.json()["items"]}


def links_of(item: dict) -> list[str | None]:
    return [item["original"], *(t["url"] for t in item["thumbnails"])]


def seconds_valid(url: str) -> float:
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:  # SigV4
        return float(query["X-Amz-Expires"][0])
    return float(query["Expires"][0]) - time.time()  # SigV2: an absolute time


def test_only_objects_a_worker_rendered_in_an_allowed_bucket_get_links():
    store = InProcessStatuses()
    store.save(
        [
            Record(
                "photos", "a b.jpg", "written", etag="e", size=5000, thumbnails=(thumb("thumbnails/128x128/a b.jpg"),)
            ),
            # A forged event named them: the receiver skipped them, and must not hand out a download link.
            Record("private-bucket", "payroll.csv", "skipped", reason="bucket not in S3THUMBS_BUCKETS"),
            Record("photos", "backup.sql", "skipped", reason="not an image key"),
            Record("photos", "bad.jpg", "failed", reason="cannot decode image"),
            Record("photos", "next.jpg", "queued"),
            Record("private-bucket", "x.jpg", "written", thumbnails=(thumb("thumbnails/128x128/x.jpg"),)),
            # A thumbnail key that the layout does not put there is no thumbnail of this source.
            Record("photos", "t.jpg", "current", thumbnails=(thumb("payroll.csv"), thumb("thumbnails/128x128/t.jpg"))),
        ]
    )

    shown = items(store)

    assert set(shown) == {"a b.jpg", "payroll.csv", "backup.sql", "bad.jpg", "next.jpg", "x.jpg", "t.jpg"}
    linked = {key for key, item in shown.items() if any(links_of(item))}
    assert linked == {"a b.jpg", "t.jpg"}
    assert shown["t.jpg"]["thumbnails"][0]["url"] is None
    assert shown["bad.jpg"]["reason"] == "cannot decode image"
    urls = [*links_of(shown["a b.jpg"]), shown["t.jpg"]["original"], shown["t.jpg"]["thumbnails"][1]["url"]]
    assert [urlsplit(url).path for url in urls] == [
        "/photos/a%20b.jpg",
        "/photos/thumbnails/128x128/a%20b.jpg",
        "/photos/t.jpg",
        "/photos/thumbnails/128x128/t.jpg",
    ]
    for url in urls:
        assert 0 < seconds_valid(url) <= LIFETIME
        assert parse_qs(urlsplit(url).query)["response-cache-control"] == [CACHE_CONTROL]


def test_links_stay_the_same_across_refreshes():
    store = InProcessStatuses()
    store.save([Record("photos", "a.jpg", "written", etag="e", thumbnails=(thumb("thumbnails/128x128/a.jpg"),))])

    with gallery(store) as http:
        first = http.get("/gallery.json", headers=basic(GALLERY_TOKEN)).json()["items"]
        time.sleep(1.1)  # a signature made a second later differs (its date or expiry is in seconds)
        second = http.get("/gallery.json", headers=basic(GALLERY_TOKEN)).json()["items"]

    assert links_of(first[0]) == links_of(second[0])
    assert all(links_of(first[0]))


def test_a_new_render_gets_new_links_and_a_window_ends():
    signed: list[tuple[str, str]] = []
    now = [0.0]

    def presign(bucket: str, key: str) -> str:
        signed.append((bucket, key))
        return f"https://s3.test/{bucket}/{key}?n={len(signed)}"

    links = Links(presign, window=300, clock=lambda: now[0])
    first = links.url("photos", "a.jpg", "v1")
    assert links.url("photos", "a.jpg", "v1") == first
    assert links.url("photos", "a.jpg", "v2") != first  # re-rendered: the browser must fetch it again
    now[0] = 299.0
    assert links.url("photos", "a.jpg", "v1") == first
    now[0] = 300.0
    assert links.url("photos", "a.jpg", "v1") != first
    assert len(signed) == 3


@pytest.mark.parametrize(
    "bad",
    [
        Record("bad bucket!", "x.jpg", "written", thumbnails=(thumb("thumbnails/128x128/x.jpg"),)),
        Record("photos", "", "written"),
        Record("photos", "k" * 1025, "written"),
        Record("photos", "nokey.jpg", "written", thumbnails=({"width": 1, "height": 1},)),
        Record("photos", "odd.jpg", "written", thumbnails=("not a mapping",)),  # type: ignore[arg-type]
    ],
    ids=["bucket", "empty key", "long key", "thumbnail without key", "thumbnail not a mapping"],
)
def test_a_record_the_gallery_cannot_show_is_left_out_and_the_rest_shown(bad):
    store = InProcessStatuses()
    store.save([Record("photos", "ok.jpg", "written", etag="e", at=1.0), dataclasses.replace(bad, at=2.0)])

    shown = items(store, buckets=None)

    assert list(shown) == ["ok.jpg"]
    assert shown["ok.jpg"]["original"]


def test_without_a_store_the_page_says_how_to_get_one():
    app = create_app(Recorded(), gallery_token=GALLERY_TOKEN, gallery=Gallery(None, Links(str), Layout()))
    with TestClient(app) as http:
        body = http.get("/gallery.json", headers=basic(GALLERY_TOKEN)).json()

    assert body == {"message": NO_STORE, "items": []}


@pytest.mark.parametrize("path", ["/", "/gallery.json"])
def test_the_gallery_and_the_events_door_each_take_their_own_token(path):
    with gallery(InProcessStatuses()) as http:
        assert http.get(path, headers=basic(GALLERY_TOKEN)).status_code == 200
        refused = http.get(path, headers=basic(SENDER_TOKEN))
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert http.get(path).status_code == 401
        assert http.post("/events", json=s3_test_event(), headers=basic(GALLERY_TOKEN)).status_code == 401
        assert http.post("/events", json=s3_test_event(), headers=basic(SENDER_TOKEN)).status_code == 200


@pytest.mark.parametrize("path", ["/", "/gallery.json"])
@pytest.mark.parametrize(
    ("auth_token", "loopback"), [(SENDER_TOKEN, False), (None, False), (SENDER_TOKEN, True)], ids=str
)
def test_without_a_gallery_token_there_is_no_gallery(path, auth_token, loopback):
    token = Secret(auth_token) if auth_token else None
    with gallery(
        InProcessStatuses(), gallery_token=None, auth_token=token, loopback=loopback, base_url=LOOPBACK
    ) as http:
        assert http.get(path).status_code == 404
        assert http.get(path, headers=basic(SENDER_TOKEN)).status_code == 404


@pytest.mark.parametrize("path", ["/", "/gallery.json"])
def test_on_loopback_without_any_token_the_gallery_is_open_to_this_machine_only(path):
    # s3thumbs dev: no token at all. A page elsewhere that rebinds its own name to 127.0.0.1 must not read it.
    with gallery(InProcessStatuses(), gallery_token=None, auth_token=None, loopback=True, base_url=LOOPBACK) as http:
        assert http.get(path).status_code == 200
        assert http.get(path, headers={"Host": "localhost:8080"}).status_code == 200
        assert http.get(path, headers={"Host": "[::1]:8080"}).status_code == 200
        assert http.get(path, headers={"Host": "attacker.example:8080"}).status_code == 403


@pytest.mark.parametrize("path", ["/", "/gallery.json"])
def test_the_gallery_cannot_be_framed_leaks_no_referrer_and_is_not_sniffed(path):
    with gallery(InProcessStatuses()) as http:
        response = http.get(path, headers=basic(GALLERY_TOKEN))

    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_rendered_item_carries_its_placeholder_crops_and_displayed_size():
    from s3thumbs.placeholder import thumbhash_of
    from tests.support import images as pictures

    placeholder = thumbhash_of(pictures.pattern(120, 80))
    store = InProcessStatuses()
    cover = {**thumb("thumbnails/64x64/a.jpg"), "width": 64, "height": 64, "fit": "cover"}
    store.save(
        [
            Record(
                "photos",
                "a.jpg",
                "written",
                etag="e",
                size=9,
                thumbnails=(cover,),
                thumbhash=placeholder,
                shown=(1200, 800),
            ),
            Record(
                "photos",
                "b.jpg",
                "written",
                etag="e",
                size=9,
                thumbnails=(thumb("thumbnails/128x128/b.jpg"),),
                thumbhash="%%",
            ),
        ]
    )

    shown = items(store)

    assert shown["a.jpg"]["placeholder"].startswith("data:image/png;base64,")
    assert shown["a.jpg"]["shown"] == [1200, 800]
    assert [t["fit"] for t in shown["a.jpg"]["thumbnails"]] == ["cover"]
    assert shown["b.jpg"]["placeholder"] is None  # a hash that cannot be read: no placeholder, the item still shown
    assert [t["fit"] for t in shown["b.jpg"]["thumbnails"]] == ["inside"]
