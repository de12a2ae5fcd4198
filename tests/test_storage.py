"""A source's download is held in memory up to SPOOL_MAX_MEMORY and on disk beyond, so a worker's
memory does not grow with its sources (the byte limit: ``test_thumbnailer.py``)."""

from __future__ import annotations

import io
import os

import pytest

from s3thumbs import storage


@pytest.fixture
def sources(mocked_s3, monkeypatch):
    monkeypatch.setattr(storage, "SPOOL_MAX_MEMORY", 1000)
    mocked_s3.put_object(Bucket="photos", Key="small.bin", Body=b"s" * 1000)
    mocked_s3.put_object(Bucket="photos", Key="big.bin", Body=b"b" * 1001)


def test_a_source_up_to_the_memory_limit_is_read_into_memory(mocked_storage, sources):
    with mocked_storage.get("photos", "small.bin").spool(10_000) as spooled:
        assert isinstance(spooled, io.BytesIO)
        assert spooled.read() == b"s" * 1000


def test_a_bigger_source_is_read_into_a_file_on_disk(mocked_storage, sources):
    with mocked_storage.get("photos", "big.bin").spool(10_000) as spooled:
        assert os.fstat(spooled.fileno()).st_size == 1001
        assert spooled.read() == b"b" * 1001
