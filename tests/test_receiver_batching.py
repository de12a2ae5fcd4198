"""Requests that wait for the broker together are published together, and each still hears back only
once its own event is on the broker: 2xx after a publish that carried it returned, 503 for every request
of a batch the broker refused, nothing published for a request that already gave up.

The tests drive the ASGI app with a publish that holds each call until the test lets it go
(integration/test_receiver_batching.py runs the real receiver on real brokers).
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from s3thumbs.batcher import Batcher
from s3thumbs.receiver import create_app
from tests.support.notifications import minio_webhook
from tests.support.publishing import Recorded

CLIENTS = 4


class HeldBroker:
    """A publish that records every call and holds it until the test opens that call's gate."""

    def __init__(self, refuse: frozenset[int] = frozenset()) -> None:
        self.calls: list[list[str]] = []  # the keys of each call, as it starts
        self.published: list[str] = []  # the keys of each call that returned
        self.refuse = refuse  # numbers of the calls that raise, as a broker that went away
        self._gates: list[threading.Event] = []
        self._lock = threading.Lock()

    def gate(self, call: int) -> threading.Event:
        with self._lock:
            while len(self._gates) <= call:
                self._gates.append(threading.Event())
            return self._gates[call]

    def __call__(self, events) -> None:
        with self._lock:
            call = len(self.calls)
            self.calls.append([event.key for event in events])
        if not self.gate(call).wait(10):
            raise TimeoutError(f"call {call} was never let go")
        if call in self.refuse:
            raise ConnectionError("broker went away")
        self.published.extend(event.key for event in events)

    def close(self) -> None:
        """Nothing to drop."""


async def until(condition, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def post(client: httpx.AsyncClient, key: str) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(client.post("/events", json=minio_webhook("uploads", key, "e1")))


def run(app, scenario) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client:
            await scenario(client)

    asyncio.run(main())


def test_requests_waiting_behind_a_publish_go_in_one_batch_and_hear_back_only_once_it_returned():
    broker = HeldBroker()

    async def scenario(client: httpx.AsyncClient) -> None:
        first = post(client, "first.jpg")
        await until(lambda: len(broker.calls) == 1, "the first publish")
        others = [post(client, f"other-{n}.jpg") for n in range(3)]
        await asyncio.sleep(0.3)  # they queue up behind the held publish
        assert not first.done() and not any(task.done() for task in others), "answered before publishing"

        broker.gate(0).set()
        assert (await first).status_code == 202
        await until(lambda: len(broker.calls) == 2, "the second publish")
        assert sorted(broker.calls[1]) == ["other-0.jpg", "other-1.jpg", "other-2.jpg"]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in others), "answered before their own publish returned"

        broker.gate(1).set()
        responses = await asyncio.gather(*others)
        assert [r.status_code for r in responses] == [202, 202, 202]
        assert [r.json()["accepted"][0]["key"] for r in responses] == ["other-0.jpg", "other-1.jpg", "other-2.jpg"]

    run(create_app(broker), scenario)
    assert broker.published == ["first.jpg", "other-0.jpg", "other-1.jpg", "other-2.jpg"]
    assert len(broker.calls) == 2


def test_a_batch_the_broker_refuses_is_503_for_every_request_in_it_and_only_for_them():
    broker = HeldBroker(refuse=frozenset({1}))

    async def scenario(client: httpx.AsyncClient) -> None:
        first = post(client, "first.jpg")
        await until(lambda: len(broker.calls) == 1, "the first publish")
        others = [post(client, f"other-{n}.jpg") for n in range(3)]
        await asyncio.sleep(0.3)  # they queue up behind the held publish
        broker.gate(0).set()
        broker.gate(1).set()
        assert (await first).status_code == 202
        responses = await asyncio.gather(*others)
        assert [r.status_code for r in responses] == [503, 503, 503]
        assert all(r.headers["Retry-After"] == "5" for r in responses)
        # The next request after the outage goes through.
        broker.gate(2).set()
        assert (await post(client, "later.jpg")).status_code == 202

    run(create_app(broker), scenario)
    assert len(broker.calls[1]) == 3
    assert broker.published == ["first.jpg", "later.jpg"]


def test_a_request_that_gave_up_waiting_for_the_broker_is_not_published_afterwards():
    broker = HeldBroker()

    async def scenario(client: httpx.AsyncClient) -> None:
        first = post(client, "first.jpg")
        await until(lambda: len(broker.calls) == 1, "the first publish")
        second = post(client, "second.jpg")
        started = time.monotonic()
        responses = await asyncio.gather(first, second)
        assert [r.status_code for r in responses] == [503, 503]
        assert time.monotonic() - started < 2  # the deadline, not the broker, decided

        broker.gate(0).set()  # the broker answers at last: the first was on its way, the second never left
        await asyncio.sleep(0.3)
        broker.gate(1).set()
        assert (await post(client, "third.jpg")).status_code == 202

    run(create_app(broker, publish_timeout=0.5), scenario)
    assert broker.calls == [["first.jpg"], ["third.jpg"]]


def test_health_answers_while_a_publish_is_held():
    broker = HeldBroker()

    async def scenario(client: httpx.AsyncClient) -> None:
        first = post(client, "first.jpg")
        await until(lambda: len(broker.calls) == 1, "the first publish")
        assert (await client.get("/healthz")).status_code == 200
        broker.gate(0).set()
        assert (await first).status_code == 202

    run(create_app(broker), scenario)


def test_with_two_publisher_threads_a_second_batch_goes_while_the_first_is_held():
    broker = HeldBroker()

    async def scenario(client: httpx.AsyncClient) -> None:
        first = post(client, "first.jpg")
        await until(lambda: len(broker.calls) == 1, "the first publish")
        second = post(client, "second.jpg")
        await until(lambda: len(broker.calls) == 2, "a second publish while the first is held")
        await asyncio.sleep(0.1)
        assert not first.done() and not second.done()
        broker.gate(1).set()
        assert (await second).status_code == 202
        assert not first.done(), "answered before its own publish returned"
        broker.gate(0).set()
        assert (await first).status_code == 202

    run(create_app(broker, publisher_threads=2), scenario)
    assert broker.calls == [["first.jpg"], ["second.jpg"]]
    assert broker.published == ["second.jpg", "first.jpg"]


def test_an_idle_publisher_thread_ends_and_closes_what_it_opened():
    class Closing:
        def __init__(self) -> None:
            self.threads: list[threading.Thread] = []
            self.closed: list[threading.Thread] = []

        def __call__(self, events) -> None:
            self.threads.append(threading.current_thread())

        def close(self) -> None:
            self.closed.append(threading.current_thread())

    publish = Closing()
    batcher = Batcher(publish, idle_seconds=0.2)

    async def twice() -> None:
        await batcher.publish([])
        await asyncio.sleep(1)  # the thread ends meanwhile
        await batcher.publish([])

    asyncio.run(twice())
    time.sleep(0.6)
    assert len(publish.threads) == 2 and publish.threads[0] is not publish.threads[1], "a new thread for new work"
    assert publish.closed == publish.threads, "each thread closed its own connection as it ended"


def test_publish_runs_in_one_thread_at_a_time_and_takes_concurrent_requests_together():
    clients = CLIENTS
    inside, peak, lock = 0, 0, threading.Lock()

    def publish(events) -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.01)
        with lock:
            inside -= 1

    seen: list[int] = []

    class Counted(Recorded):
        def __call__(self, events) -> None:
            seen.append(len(events))
            publish(events)

    app = create_app(Counted())

    async def scenario(client: httpx.AsyncClient) -> None:
        async def one_client(n: int) -> None:
            for i in range(10):
                response = await client.post("/events", json=minio_webhook("uploads", f"c{n}-{i}.jpg", "e1"))
                assert response.status_code == 202

        await asyncio.gather(*(one_client(n) for n in range(clients)))

    run(app, scenario)
    assert sum(seen) == clients * 10
    assert max(seen) > 1, "concurrent requests were never published together"
    assert peak == 1, "publish was called from more than one thread at a time"
