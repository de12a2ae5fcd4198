"""The receiver's server under hostile clients, on real sockets to a real ``s3thumbs receiver`` process.

Stalled connections (headers that never finish) must neither starve real senders nor stay open; a body
over the limit sent in one go must get a 413 the sender can read, not a connection reset.
"""

from __future__ import annotations

import collections
import json
import selectors
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from s3thumbs.draining import DRAIN_SECONDS
from s3thumbs.server import HEADER_TIMEOUT, MAX_HEADER_BYTES, connection_bound
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env
from tests.support.servers import empty_redis

TOKEN = "server-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The receiver's descriptor limit, as a small container might set it: it ran out at ~240 connections.
OPEN_FILES = 256
STALLED_FIRST = 100
STALLED_MORE = 300
SENDS = 5


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def stall(where: tuple[str, int]) -> socket.socket:
    """A connection whose request headers never finish."""
    sock = socket.create_connection(where, timeout=5)
    sock.sendall(b"POST /events HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n")
    sock.setblocking(False)
    return sock


def closed(sock: socket.socket) -> bool:
    """True once the server has closed (or reset) this connection."""
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_closed(socks: dict[socket.socket, float], deadline: float) -> dict[socket.socket, float]:
    """When each connection was closed by the server (monotonic seconds), waiting until ``deadline``."""
    ended: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while len(ended) < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if closed(sock):
                    ended[sock] = time.monotonic()
                    selector.unregister(sock)
    return ended


@pytest.mark.slow
def test_stalled_connections_neither_starve_senders_nor_stay_open(redis_server, tmp_path):
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), auth_token=TOKEN)
    with receiver(env, tmp_path / "receiver.log", open_files=OPEN_FILES) as url:
        where = address(url)
        opened = {stall(where): time.monotonic() for _ in range(STALLED_FIRST)}
        time.sleep(HEADER_TIMEOUT / 2)
        early = [sock for sock in opened if closed(sock)]
        # More than the process has descriptors for: the oldest stalled ones make room.
        opened |= {stall(where): time.monotonic() for _ in range(STALLED_MORE)}
        answers, seconds = [], []
        with httpx.Client(timeout=HEADER_TIMEOUT) as sender:
            for n in range(SENDS):
                started = time.monotonic()
                answers.append(sender.post(f"{url}/events", json=minio_webhook("uploads", f"{n}.jpg"), headers=AUTH))
                seconds.append(time.monotonic() - started)
        still_open = sum(not closed(sock) for sock in opened)
        ended = wait_closed(opened, time.monotonic() + HEADER_TIMEOUT * 1.5)
    for sock in opened:
        sock.close()

    lived = sorted(ended[sock] - opened[sock] for sock in ended)
    print(
        f"{len(opened)} stalled connections, bound {connection_bound(OPEN_FILES)}: sender answered in "
        f"{max(seconds) * 1000:.0f} ms at most; {still_open} still open after the senders; all closed, after "
        f"{lived[0]:.1f}-{lived[-1]:.1f} s (median {lived[len(lived) // 2]:.1f} s)"
    )
    assert early == []  # nothing is dropped before its deadline while there is room
    assert [answer.status_code for answer in answers] == [202] * SENDS
    assert still_open <= connection_bound(OPEN_FILES)
    assert len(ended) == len(opened)
    assert lived[-1] <= HEADER_TIMEOUT * 1.5


def test_headers_over_the_limit_get_431_at_once_and_those_within_pass(redis_server, tmp_path):
    # The parser keeps whatever header bytes it is sent: unbounded, a client fills the receiver's memory.
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), auth_token=TOKEN)
    with receiver(env, tmp_path / "receiver.log") as url:
        with socket.create_connection(address(url), timeout=HEADER_TIMEOUT / 2) as sock:
            sock.sendall(b"POST /events HTTP/1.1\r\nHost: receiver\r\nX-Padding: " + b"a" * MAX_HEADER_BYTES)
            answer = sock.recv(1024)
        padding = {"X-Padding": "a" * (MAX_HEADER_BYTES // 2)}
        within = httpx.post(f"{url}/events", json=minio_webhook(), headers=AUTH | padding, timeout=HEADER_TIMEOUT)

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert within.status_code == 202


# A sender that posts more than the limit in one go: with Connection: close the server closes once it has
# answered, and a close with unread bytes resets the connection, answer and all.
BODY_LIMIT = 1024 * 1024
TRIES = 60


def over_limit(chunked: bool, token: str) -> bytes:
    body = json.dumps(minio_webhook()).encode() + b" " * (2 * BODY_LIMIT)
    head = f"POST /events HTTP/1.1\r\nHost: receiver\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def outcome(where: tuple[str, int], request: bytes) -> str:
    """The status line the sender read, or the error it got instead."""
    with socket.create_connection(where, timeout=10) as sock:
        try:
            sock.sendall(request)
            answer = b""
            while b"\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
        except OSError as e:
            return type(e).__name__
    return answer.split(b"\r\n")[0].decode() or "closed without an answer"


@pytest.mark.parametrize(
    ("chunked", "token", "status"),
    [(False, TOKEN, "413"), (True, TOKEN, "413"), (False, "wrong", "401")],
    ids=["content-length", "chunked", "wrong token"],
)
def test_an_early_answer_to_a_large_body_is_read_not_reset(redis_server, tmp_path, chunked, token, status):
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), auth_token=TOKEN, max_body_bytes=str(BODY_LIMIT))
    with receiver(env, tmp_path / "receiver.log") as url:
        where = address(url)
        outcomes = collections.Counter(outcome(where, over_limit(chunked, token)) for _ in range(TRIES))

    print(f"{TRIES} bodies of {2 * BODY_LIMIT} bytes, {'chunked' if chunked else 'Content-Length'}: {dict(outcomes)}")
    assert {line.split(" ")[1] if " " in line else line: n for line, n in outcomes.items()} == {status: TRIES}


def test_a_sender_waiting_for_100_continue_gets_its_413_at_once(redis_server, tmp_path):
    # curl asks before sending a body over 1 MiB: nothing was sent, so there is nothing to read first.
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), auth_token=TOKEN, max_body_bytes=str(BODY_LIMIT))
    head = (
        f"POST /events HTTP/1.1\r\nHost: receiver\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Expect: 100-continue\r\nContent-Length: {2 * BODY_LIMIT}\r\n\r\n"
    )
    with receiver(env, tmp_path / "receiver.log") as url:
        with socket.create_connection(address(url), timeout=DRAIN_SECONDS / 2) as sock:
            sock.sendall(head.encode())
            answer = whole_response(sock)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'bytes"}')


def whole_response(sock: socket.socket) -> bytes:
    """Status line, headers and the body its Content-Length announces."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))[15:])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body
