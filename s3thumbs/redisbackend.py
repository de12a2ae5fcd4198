"""The result backend's Redis: the client s3thumbs' own records use, and the status store kept there.

Status records forget by themselves: a TTL on every record, and only the newest ``keep`` sources
are indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis

from s3thumbs.errors import StoreUnavailable
from s3thumbs.status import KEEP, Record

logger = logging.getLogger(__name__)

RECENT = "s3thumbs:recent"
RECORD_PREFIX = "s3thumbs:status:"
TTL_SECONDS = 7 * 24 * 3600
# The receiver's client waits at most this long for Redis (in the status writer's thread, never a request's).
RECEIVER_TIMEOUT_SECONDS = 1.0


def backend_redis(url: str | None, timeout: float) -> redis.Redis | None:
    """A client of the result backend's Redis, or None when the backend is off or is not Redis."""
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class StatusStore:
    """Records in Redis: ``s3thumbs:status:{bucket}/{key}`` plus a time-ordered index."""

    def __init__(self, client: redis.Redis, ttl: int = TTL_SECONDS, keep: int = KEEP) -> None:
        self.client = client
        self.ttl = ttl
        self.keep = keep

    @classmethod
    def from_backend(cls, url: str | None, timeout: float = 2.0) -> StatusStore | None:
        """The store in the result backend's Redis, or None when the backend is off or not Redis."""
        client = backend_redis(url, timeout)
        return None if client is None else cls(client)

    def save(self, records: Iterable[Record], *, keep_existing: bool = False) -> None:
        """Write records in one round trip; log and carry on when Redis does not answer.

        ``keep_existing`` leaves a source's record alone when it has one: the receiver's "queued"
        must never overwrite what a fast worker already wrote.
        """
        batch = list(records)
        if not batch:
            return
        pipe = self.client.pipeline(transaction=False)
        for record in batch:
            pipe.set(RECORD_PREFIX + record.member, record.to_json(), ex=self.ttl, nx=keep_existing)
            pipe.zadd(RECENT, {record.member: record.at})
        pipe.zremrangebyrank(RECENT, 0, -self.keep - 1)
        pipe.expire(RECENT, self.ttl)
        try:
            pipe.execute()
        except redis.RedisError as e:
            logger.warning("status store: could not record %d objects: %s", len(batch), e)

    def recent(self, limit: int = 60) -> list[Record]:
        """The newest records first; sources whose record expired are dropped from the index."""
        try:
            found: list[Any] = self.client.zrevrange(RECENT, 0, limit - 1)
            members = [m.decode() if isinstance(m, bytes) else str(m) for m in found]
            if not members:
                return []
            texts: list[Any] = self.client.mget([RECORD_PREFIX + m for m in members])
            expired = [m for m, text in zip(members, texts, strict=True) if text is None]
            if expired:
                self.client.zrem(RECENT, *expired)
        except redis.RedisError as e:
            raise StoreUnavailable(f"status store unavailable: {e}") from e
        records = (_readable(member, text) for member, text in zip(members, texts, strict=True) if text is not None)
        return [record for record in records if record is not None]


def _readable(member: str, text: bytes | str) -> Record | None:
    """The record, or None (logged) when it is not one: one bad record must not hide the others."""
    try:
        return Record.from_json(text)
    except (ValueError, TypeError, AttributeError) as e:
        logger.warning("status store: left out %s, which is not a status record: %s", member, e)
        return None
