"""Publishes the events of concurrent HTTP requests together, from publisher threads of its own.

Each request hands its events over and waits. The requests that reach that point in the same turn of
the event loop are handed to the publisher threads together; a thread takes every batch waiting (up
to ``max_events`` events), calls ``publish`` once with all their events, and as soon as that call has
returned settles each of those requests: a request's 2xx still means its own events are on the
broker. When the call raises, every request of that batch gets the error. A request that gave up
waiting (its deadline passed) before a thread reached it is not published. Only after settling are
the ``listeners`` told what was published (the gallery's "queued" records): nothing they do can
delay an answer, and they must not block the thread either.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from s3thumbs.events import ObjectEvent
from s3thumbs.messages import Publish

logger = logging.getLogger(__name__)

# At most this many events go to the broker in one publish call, whatever the number of requests waiting.
MAX_BATCH_EVENTS = 256
# A publisher thread ends after this many idle seconds; the next request starts another.
PUBLISHER_IDLE_SECONDS = 60.0

Listener = Callable[[Sequence[ObjectEvent]], None]


@dataclass(eq=False)
class _Waiter:
    """One request's events, and how to wake that request once they are published (or not)."""

    events: Sequence[ObjectEvent]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    abandoned: bool = field(default=False)


class Batcher:
    """Batches concurrent requests' events into one ``publish`` call per turn (see the module doc).

    Up to ``threads`` threads publish at once: more than one helps only where each call waits long for
    the broker (RabbitMQ's confirms), and then ``publish`` must be thread-safe. A thread ends after
    ``idle_seconds`` without work, calling ``publish.close()``; the next request starts another.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        threads: int = 1,
        max_events: int = MAX_BATCH_EVENTS,
        idle_seconds: float = PUBLISHER_IDLE_SECONDS,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._publish = publish
        self._max_threads = threads
        self._max_events = max_events
        self._idle_seconds = idle_seconds
        self._listeners = tuple(listeners)
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        self._pending: queue.SimpleQueue[list[_Waiter] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0  # publisher threads alive
        self._idle = 0  # of which waiting for work

    async def publish(self, events: Sequence[ObjectEvent]) -> None:
        """Return once ``events`` are on the broker; raise what ``publish`` raised when they are not."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(events, loop, loop.create_future())
        gathering = self._gathering.get(loop)
        if gathering is None:
            # Hand over once the requests ready in this turn of the loop have joined: one wake-up of
            # a publisher thread for all of them, not one each.
            gathering = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathering.append(waiter)
        try:
            await waiter.future
        finally:
            waiter.abandoned = True  # published or not, nobody waits for it any more

    def close(self) -> None:
        """Let the publisher threads end once they have published what is waiting."""
        with self._lock:
            for _ in range(self._running):
                self._pending.put(None)
            self._running = self._idle = 0

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._gathering.pop(loop)
        with self._lock:
            self._pending.put(waiters)
            if self._idle == 0 and self._running < self._max_threads:
                self._running += 1
                self._idle += 1  # waiting for work until it has taken some
                threading.Thread(target=self._run, name="s3thumbs-publisher", daemon=True).start()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._publish.close()

    def _serve(self) -> None:
        while True:
            try:
                first = self._pending.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._pending.empty():
                        self._running -= 1
                        self._idle -= 1
                        return
                continue
            if first is None:
                return
            with self._lock:
                self._idle -= 1
            batch, stop = list(first), False
            size = sum(len(waiter.events) for waiter in batch)
            while size < self._max_events:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch += more
                size += sum(len(waiter.events) for waiter in more)
            self._publish_batch([waiter for waiter in batch if not waiter.abandoned])
            if stop:
                return
            with self._lock:
                self._idle += 1

    def _publish_batch(self, batch: list[_Waiter]) -> None:
        if not batch:
            return
        events = [event for waiter in batch for event in waiter.events]
        error: Exception | None = None
        try:
            self._publish(events)
        except Exception as e:  # handed to every request of the batch, each answers 503
            error = e
        loops: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        for waiter in batch:
            loops.setdefault(waiter.loop, []).append(waiter)
        for loop, waiters in loops.items():
            try:
                loop.call_soon_threadsafe(_settle, waiters, error)
            except RuntimeError:  # that loop is closed: nobody is left to answer
                pass
        if error is None:
            for listener in self._listeners:
                try:
                    listener(events)
                except Exception:  # the events are published; a listener's fault must not end this thread
                    logger.exception("a listener failed after %d event(s) were published", len(events))


def _settle(waiters: list[_Waiter], error: Exception | None) -> None:
    for waiter in waiters:
        if waiter.future.done():
            continue
        if error is None:
            waiter.future.set_result(None)
        else:
            waiter.future.set_exception(error)
