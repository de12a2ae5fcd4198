"""The status store behind the gallery, where there is no Redis to keep it."""

from __future__ import annotations

import logging

import pytest

from s3thumbs.redisbackend import StatusStore
from s3thumbs.status import Record
from tests.support.servers import free_port


@pytest.mark.parametrize("url", [None, "", "rpc://", "db+postgresql://x/y"])
def test_there_is_no_store_without_a_redis_result_backend(url):
    assert StatusStore.from_backend(url) is None


def test_an_unreachable_store_is_logged_and_does_not_stop_the_work(caplog):
    store = StatusStore.from_backend(f"redis://127.0.0.1:{free_port()}/0")
    assert store is not None

    with caplog.at_level(logging.WARNING, logger="s3thumbs.redisbackend"):
        store.save([Record("photos", "a.jpg", "written")])

    assert "could not record 1 objects" in caplog.text
