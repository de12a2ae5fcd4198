"""The receiver's HTTP server: uvicorn, with a deadline and a size limit on request headers, and a bound
on connections.

uvicorn waits for ever for request headers that never finish, and accepts connections until its
process runs out of file descriptors; past that, no one gets in (242 stalled connections did it to a
receiver with 256 descriptors). ``GuardedProtocol`` drops a connection whose request headers are not
complete ``HEADER_TIMEOUT`` seconds after it opened (or after its previous answer), and keeps at most
``connection_bound()`` connections open per process: a connection past the bound closes the oldest one
that is waiting for headers (stalled, or idle between requests), and only when every connection is busy
with a request is the newcomer itself closed. Real senders send their headers at once, so they are
never the oldest waiting: hundreds of stalled connections cost them nothing. Request line and headers
over ``MAX_HEADER_BYTES`` get a 431 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

# Seconds a client has to send a request's headers, from connecting or from its previous answer.
HEADER_TIMEOUT = 10.0
# Bytes of request line and headers a request may have: httptools keeps however many it is sent, so
# without a bound one client fills the memory (100 MiB of one header took the process to 273 MiB).
MAX_HEADER_BYTES = 64 * 1024
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
# Connections one receiver process keeps open at most (fewer when its descriptor limit is lower).
MAX_CONNECTIONS = 1000
# Descriptors left for the process itself: broker and Redis connections, logs, threads, SNS fetches.
FD_RESERVE = 64
# Seconds between two log lines about dropped connections: an attack must not flood the log.
DROP_REPORT_SECONDS = 60.0


def connection_bound(open_files: int | None = None) -> int:
    """Connections a process may keep open: ``MAX_CONNECTIONS``, or its descriptor limit less ``FD_RESERVE``."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, open_files - FD_RESERVE))


@functools.cache
def _bound() -> int:
    return connection_bound()


class _Drops:
    """Counts dropped connections and says so in the log, at most once per ``DROP_REPORT_SECONDS``."""

    def __init__(self) -> None:
        self.timed_out = 0
        self.too_large = 0
        self.evicted = 0
        self.refused = 0
        self._reported = -DROP_REPORT_SECONDS

    def count(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        now = time.monotonic()
        if now - self._reported >= DROP_REPORT_SECONDS:
            self._reported = now
            logger.warning(
                "dropped connections so far: %d without headers after %g s, %d with headers over %d bytes, "
                "%d closed to make room, %d refused with all %d busy",
                self.timed_out,
                HEADER_TIMEOUT,
                self.too_large,
                MAX_HEADER_BYTES,
                self.evicted,
                self.refused,
                _bound(),
            )


DROPS = _Drops()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the header deadline and the connection bound above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since: float | None = None  # when it began waiting for headers; None while busy
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.waiting_since is None or self.transport.is_closing():
            return
        self._header_bytes += len(data)  # all of it came before the headers' end
        if self._header_bytes > MAX_HEADER_BYTES:
            self._headers_arrived()
            DROPS.count("too_large")
            self.transport.write(TOO_LARGE)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > _bound():
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a request already read: its headers have arrived
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()

    def _await_headers(self) -> None:
        self._headers_arrived()
        self.waiting_since = time.monotonic()
        self._header_bytes = 0
        self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._drop, "timed_out")

    def _headers_arrived(self) -> None:
        self.waiting_since = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _drop(self, kind: str) -> None:
        self._headers_arrived()
        DROPS.count(kind)
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        waiting = [c for c in self.connections if isinstance(c, GuardedProtocol) and c is not self and c.waiting_since]
        if waiting:
            min(waiting, key=lambda c: c.waiting_since or 0.0)._drop("evicted")
        else:
            self._drop("refused")


def options() -> dict[str, Any]:
    """uvicorn settings every receiver runs with (``s3thumbs receiver``, and the one in ``s3thumbs dev``)."""
    return {"http": GuardedProtocol, "ws": "none"}
