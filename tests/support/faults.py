"""Fault injection: an S3 proxy that fails on cue, a TCP link that can go silent.

``FaultProxy`` sits between a worker and moto's server. Every request it sees is recorded with its
timestamps; requests that match a rule get that rule's faults in turn (an S3 error reply, a connection
dropped in the middle of the response body, or one closed before any response), then pass through.
``TcpLink`` relays raw bytes to a server and can stop relaying without closing anything, as a network
partition would.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.servers import LOOPBACK

# Not forwarded: they describe one hop, not the request (Expect is answered by the proxy itself).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"})


@dataclass(frozen=True)
class S3Error:
    """An S3 error reply: status, code and message, in S3's XML shape."""

    status: int
    code: str
    message: str

    def body(self, resource: str) -> bytes:
        request_id = uuid.uuid4().hex[:16].upper()
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
            f"<Message>{self.message}</Message><Resource>{resource}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class Disconnect:
    """Close the connection: before any response, or after the headers and half of the body."""

    name: str
    mid_body: bool


SLOW_DOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")
INTERNAL_ERROR = S3Error(500, "InternalError", "We encountered an internal error. Please try again.")
ACCESS_DENIED = S3Error(403, "AccessDenied", "Access Denied")
NO_SUCH_KEY = S3Error(404, "NoSuchKey", "The specified key does not exist.")
PRECONDITION_FAILED = S3Error(
    412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
)
DROP_MID_BODY = Disconnect("drop mid-body", mid_body=True)
CLOSE_BEFORE_RESPONSE = Disconnect("close before response", mid_body=False)
Fault = S3Error | Disconnect


def outcome_of(fault: Fault) -> str:
    """How the proxy records a request it answered with ``fault``."""
    return fault.code if isinstance(fault, S3Error) else fault.name


@dataclass(frozen=True)
class Exchange:
    """One request the proxy handled: what came in, what went out, and when (time.monotonic())."""

    method: str
    path: str  # URL-decoded, without the query string
    started: float
    ended: float
    outcome: str  # "200", "404"… for passed requests; the fault's name otherwise
    fault: Fault | None


class _Rule:
    def __init__(self, method: str, path: str | re.Pattern[str], faults: list[Fault], forever: Fault | None) -> None:
        self.method = method
        self.path = path
        self.faults = faults
        self.forever = forever

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.fullmatch(path) is not None
        return path == self.path

    def next_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.pop(0)
        return self.forever


class FaultProxy:
    """A threaded HTTP proxy in front of an S3 endpoint that injects faults into matching requests."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or LOOPBACK
        self.upstream_port = parts.port or 80
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._exchanges: list[Exchange] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inject(self, method: str, path: str | re.Pattern[str], *faults: Fault, forever: Fault | None = None) -> None:
        """Answer the next matching requests with ``faults``, one each, then ``forever`` (or pass through)."""
        with self._lock:
            self._rules.append(_Rule(method, path, list(faults), forever))

    def reset(self) -> None:
        """Forget every rule (and keep the record of what was seen)."""
        with self._lock:
            self._rules.clear()

    def exchanges(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> list[Exchange]:
        """What the proxy has answered so far, in the order the answers ended."""
        with self._lock:
            seen = list(self._exchanges)
        if method is not None:
            seen = [e for e in seen if e.method == method]
        if isinstance(path, re.Pattern):
            seen = [e for e in seen if path.fullmatch(e.path)]
        elif path is not None:
            seen = [e for e in seen if e.path == path]
        return seen

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    return rule.next_fault()
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is let go after this
    server: Any

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy
        started = time.monotonic()
        body = self._read_body()
        path = unquote(urlsplit(self.path).path)
        fault = proxy._fault_for(self.command, path)
        if isinstance(fault, S3Error):
            outcome = outcome_of(fault)
            self._reply_error(fault, path)
        elif fault is not None and not fault.mid_body:
            outcome = outcome_of(fault)
            self._disconnect()
        else:
            status, reason, headers, data = self._forward(proxy, body)
            outcome = outcome_of(fault) if fault is not None else str(status)
            self._relay(status, reason, headers, data, drop=fault is not None)
        proxy._record(Exchange(self.command, path, started, time.monotonic(), outcome, fault))

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _read_chunked(self) -> bytes:
        """The raw chunked body, as sent (it is forwarded with its Transfer-Encoding header)."""
        raw = bytearray()
        while True:
            line = self.rfile.readline()
            raw += line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = self.rfile.readline()
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += self.rfile.read(size + 2)

    def _forward(self, proxy: FaultProxy, body: bytes | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            connection.close()

    def _relay(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes, *, drop: bool) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered == "transfer-encoding":
                continue
            if lowered == "content-length" and self.command != "HEAD":
                continue
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if drop:
            self.wfile.write(data[: len(data) // 2])
            self._disconnect()
            return
        self.wfile.write(data)

    def _reply_error(self, error: S3Error, path: str) -> None:
        body = b"" if self.command == "HEAD" else error.body(path)
        self.send_response_only(error.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        self.end_headers()
        self.wfile.write(body)

    def _disconnect(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):  # the client went away (or was killed) mid-exchange
            self.close_connection = True


class TcpLink:
    """A TCP relay to ``host:port`` that can go silent: connections stay open, no byte goes through."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._relaying = threading.Event()
        self._relaying.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="tcp-link", daemon=True)

    def start(self) -> TcpLink:
        self._thread.start()
        return self

    def silence(self) -> None:
        """Stop relaying, in both directions, on every connection; accept new ones but relay nothing."""
        self._relaying.clear()

    def restore(self) -> None:
        self._relaying.set()

    def close(self) -> None:
        self._closed.set()
        self._relaying.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> TcpLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._relaying.wait()  # a partitioned network relays nothing, not even a new connection
        if self._closed.is_set():
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            with contextlib.suppress(OSError):
                client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)
        while not self._closed.is_set():
            if not self._relaying.is_set():
                time.sleep(0.05)  # leave the bytes in the kernel's buffers, as a dead link would
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            while not self._relaying.wait(0.05) and not self._closed.is_set():
                pass  # read just as the link went silent: held back until it is restored
            try:
                sink.sendall(data)
            except OSError:
                return
