"""Answers given before a request's body has all arrived: what is left of it is read first, bounded.

A sender posting a large body in one go is still writing when an early answer comes (413 past the
limit, 401, 403). When the server then closes the connection (``Connection: close``, HTTP/1.0), the
bytes it never read make the kernel reset it, and the sender gets a reset instead of the answer (10-85 %
of 2 MiB posts did). ``Drain`` reads and discards the rest of the body, at most ``DRAIN_BYTES`` within
``DRAIN_SECONDS``, before the answer's last part goes out; past either, the answer goes out as it is.
A client waiting for ``100 Continue`` (curl past 1 MiB) has sent nothing to drain, and gets its answer
at once.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bytes of an unread body read and discarded at most before an early answer.
DRAIN_BYTES = 16 * 1024 * 1024
# Seconds spent at most on it: a client sending slowly does not hold its answer back longer.
DRAIN_SECONDS = 5.0


class Drain:
    """ASGI middleware: before a response ends, read what is left of the request body (bounded)."""

    def __init__(self, app: ASGIApp, limit: int = DRAIN_BYTES, seconds: float = DRAIN_SECONDS) -> None:
        self.app = app
        self.limit = limit
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A client that waits for "100 Continue" has sent no body yet: asking for it would invite it.
        waits = (b"expect", b"100-continue") in [(k.lower(), v.lower()) for k, v in scope["headers"]]
        received_all = False

        async def receiving() -> Message:
            nonlocal received_all, waits
            waits = False
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received_all = True
            return message

        async def sending(message: Message) -> None:
            last = message["type"] == "http.response.body" and not message.get("more_body", False)
            if last and not received_all and not waits:
                await self._drain(receiving)
            await send(message)

        await self.app(scope, receiving, sending)

    async def _drain(self, receive: Receive) -> None:
        left = self.limit
        try:
            async with asyncio.timeout(self.seconds):
                while left > 0:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return
                    left -= len(message.get("body", b""))
        except TimeoutError:
            return
