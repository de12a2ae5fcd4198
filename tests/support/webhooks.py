"""A webhook that records what a store posts: a tiny HTTP server on loopback, for tests of real senders.

Tests wait on it (``wait_for``) rather than sleep: every request wakes the waiters, so a slow machine
only makes a test slower, never wrong.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.servers import LOOPBACK

__all__ = ["Received", "WebhookRecorder"]


@dataclass(frozen=True)
class Received:
    """One request as it arrived: header names lower-cased, the body as bytes, the sender's port and when."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookRecorder:
    """Answers every request with ``status`` and keeps it; ``port=0`` picks a free port.

    Use it as a context manager. Binding a port a store was told about in advance (SeaweedFS's
    ``webhook_port``) works again and again: the server sets SO_REUSEADDR.
    """

    def __init__(self, port: int = 0, *, status: int = 200) -> None:
        self.status = status
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer((LOOPBACK, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-recorder", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/", userinfo: str = "") -> str:
        """This server's URL for ``path``, with ``user:password@`` in it when ``userinfo`` is given."""
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}{LOOPBACK}:{self.port}{path}"

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._received)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float, what: str) -> list[Received]:
        """Wait until ``predicate(received)`` holds; fail with ``what`` and what did arrive after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = "\n".join(f"{r.method} {r.path} {r.body[:300]!r}" for r in self._received)
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; received:\n{got}")
                self._changed.wait(remaining)
            return list(self._received)

    def __enter__(self) -> WebhookRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        # Senders keep connections alive; one left open would feed this recorder, not the next on the port.
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=10)

    def _record(self, request: Received) -> None:
        with self._changed:
            self._received.append(request)
            self._changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with recorder._changed:
                    recorder._connections.add(self.connection)

            def finish(self) -> None:
                with recorder._changed:
                    recorder._connections.discard(self.connection)
                super().finish()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                recorder._record(
                    Received(self.command, self.path, headers, body, self.client_address[1], time.monotonic())
                )
                self.send_response(recorder.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
