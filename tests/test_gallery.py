"""The gallery without a status store: the page says how to get one."""

from __future__ import annotations

import base64

from starlette.testclient import TestClient

from s3thumbs.gallery import NO_STORE, Gallery
from s3thumbs.keys import Layout
from s3thumbs.receiver import create_app
from tests.support.publishing import Recorded

TOKEN = "gallery-secret"


def presign(bucket: str, key: str) -> str:
    return f"https://signed.example/{bucket}/{key}?X-Amz-Signature=abc"


def test_without_a_store_the_page_says_how_to_get_one():
    app = create_app(Recorded(), token=TOKEN, gallery=Gallery(None, presign, Layout()))
    credentials = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    with TestClient(app) as http:
        body = http.get("/gallery.json", headers={"Authorization": f"Basic {credentials}"}).json()

    assert body == {"message": NO_STORE, "items": []}
