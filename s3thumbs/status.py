"""What happened to recent uploads: one small record per source, for the gallery.

Records go to a store (``redisbackend.StatusStore`` in the result backend's Redis, or
``InProcessStatuses`` in ``s3thumbs dev``). It is a window for people, not a ledger: writing to
it never decides whether work happens, so a failure to write is logged and ignored. The receiver
writes through ``BackgroundStatuses``, so that no request ever waits for a store.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from s3thumbs.events import Ignored, ObjectEvent

logger = logging.getLogger(__name__)

KEEP = 1000
# Records waiting for that thread; past this many, new ones are dropped (and counted in the log).
PENDING_WRITES = 1000
# A store that does not answer would drop a record per request: warn at the first drop, then per this many.
DROPS_PER_WARNING = 1000


@dataclass(frozen=True)
class Record:
    """The last thing that happened to one source object."""

    bucket: str
    key: str
    status: str
    reason: str | None = None
    etag: str | None = None
    size: int | None = None
    thumbnails: tuple[dict[str, Any], ...] = ()
    ms: float | None = None
    at: float = field(default_factory=time.time)
    thumbhash: str | None = None  # the source's placeholder, from its manifest
    shown: tuple[int, int] | None = None  # the source's size as displayed, from its manifest

    @property
    def member(self) -> str:
        return f"{self.bucket}/{self.key}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "thumbnails": list(self.thumbnails)})

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        data = json.loads(text)
        data["thumbnails"] = tuple(data.get("thumbnails") or ())
        data["shown"] = tuple(data["shown"]) if isinstance(data.get("shown"), list) else None
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def queued_records(events: Sequence[ObjectEvent]) -> list[Record]:
    """ "queued" for each new upload among published events."""
    return [Record(e.bucket, e.key, "queued", etag=e.etag, size=e.size) for e in events if e.action == "created"]


def skipped_records(items: Sequence[Ignored]) -> list[Record]:
    """ "skipped", with the reason, for each of these uploads."""
    return [Record(item.bucket, item.key, "skipped", reason=item.reason) for item in items]


class Statuses(Protocol):
    """Where records go: Redis (``StatusStore``) or, in ``s3thumbs dev``, this process."""

    def save(self, records: Iterable[Record], *, keep_existing: bool = False) -> None:
        """Write records; ``keep_existing`` never replaces a source's record that exists."""

    def recent(self, limit: int = 60) -> list[Record]:
        """The newest records first; raises StoreUnavailable when they cannot be read."""
        ...


class InProcessStatuses:
    """Records kept in this process: for ``s3thumbs dev``, where receiver and worker share one."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()

    def save(self, records: Iterable[Record], *, keep_existing: bool = False) -> None:
        with self._lock:
            for record in records:
                if keep_existing and record.member in self._records:
                    continue
                self._records.pop(record.member, None)
                self._records[record.member] = record
            while len(self._records) > self.keep:
                del self._records[next(iter(self._records))]

    def recent(self, limit: int = 60) -> list[Record]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.at, reverse=True)[:limit]


class BackgroundStatuses:
    """Writes to ``store`` from a thread of its own: ``save`` only queues, and never waits.

    What the receiver records is best effort: a Redis that is slow, or accepts connections and never
    answers, holds this thread, not a request. When ``pending`` records already wait, new ones are
    dropped and the drop is logged.
    """

    def __init__(self, store: Statuses, pending: int = PENDING_WRITES) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[list[Record], bool]] = queue.Queue(maxsize=pending)
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, records: Iterable[Record], *, keep_existing: bool = False) -> None:
        batch = list(records)
        if not batch:
            return
        self._start()
        try:
            self._queue.put_nowait((batch, keep_existing))
        except queue.Full:
            with self._lock:
                before, self._dropped = self._dropped, self._dropped + len(batch)
            if before // DROPS_PER_WARNING != self._dropped // DROPS_PER_WARNING or before == 0:
                logger.warning("status store: %d record(s) dropped so far, the store is not keeping up", self._dropped)

    def recent(self, limit: int = 60) -> list[Record]:
        return self.store.recent(limit)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._write, name="s3thumbs-statuses", daemon=True)
                self._thread.start()

    def _write(self) -> None:
        while True:
            batch, keep_existing = self._queue.get()
            try:
                self.store.save(batch, keep_existing=keep_existing)
            except Exception:  # a window for people: a fault here must not stop the next writes
                logger.exception("status store: could not record %d objects", len(batch))
