"""Failure markers: which sources failed for good, for which eTag and why.

Kept in the result backend's Redis (one hash, ``s3thumbs:failed``), not in the bucket: a bad
upload writes nothing there. Backfill and reconciliation leave a marked source alone until it
changes (another eTag) or ``--retry-failed``. Without a Redis result backend nothing is marked,
and backfill enqueues a broken source again each time it runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis

from s3thumbs.redisbackend import backend_redis

logger = logging.getLogger(__name__)

FAILED = "s3thumbs:failed"


class FailureMarkers:
    """``bucket/key`` -> ``{"etag", "reason", "at"}`` in one Redis hash."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def from_backend(cls, url: str | None) -> FailureMarkers | None:
        client = backend_redis(url, timeout=5)
        return None if client is None else cls(client)

    def mark(self, bucket: str, key: str, etag: str, reason: str) -> None:
        record = json.dumps({"etag": etag, "reason": reason, "at": time.time()})
        try:
            self.client.hset(FAILED, f"{bucket}/{key}", record)
        except redis.RedisError as e:
            logger.warning(
                "s3://%s/%s: could not leave a failure marker: %s", bucket, key, e, extra={"bucket": bucket, "key": key}
            )

    def clear(self, bucket: str, key: str) -> None:
        try:
            self.client.hdel(FAILED, f"{bucket}/{key}")
        except redis.RedisError as e:
            logger.warning(
                "s3://%s/%s: could not clear its failure marker: %s",
                bucket,
                key,
                e,
                extra={"bucket": bucket, "key": key},
            )

    def etags(self, bucket: str, keys: Iterable[str]) -> dict[str, str]:
        """The eTag each of ``keys`` failed for good with, for the marked ones."""
        wanted = list(keys)
        if not wanted:
            return {}
        found: list[Any] = self.client.hmget(FAILED, [f"{bucket}/{key}" for key in wanted])
        return {key: json.loads(raw)["etag"] for key, raw in zip(wanted, found, strict=True) if raw is not None}
