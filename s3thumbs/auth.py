"""Who may open which door of the receiver: an ASGI middleware with the table written out.

Senders post notifications; viewers look at the gallery. Each door needs its own token, or none
(``OPEN``). Tokens come as ``Authorization: Bearer <token>`` (what MinIO sends) or HTTP Basic with
the token as password (what an SNS subscription URL ``https://user:token@host/events`` sends), and
are compared in constant time. A path not in the table is left to routing (404).
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

Door = Literal["open", "sender", "viewer"]
OPEN: Door = "open"
SENDER: Door = "sender"
VIEWER: Door = "viewer"

# (path, method) -> the credential it needs; method "*" stands for any other method of that path.
DOORS: Mapping[tuple[str, str], Door] = {
    ("/events", "POST"): SENDER,
    ("/events", "HEAD"): OPEN,  # some MinIO releases probe the endpoint this way, without a token
    ("/healthz", "*"): OPEN,
    ("/readyz", "*"): OPEN,
    ("/metrics", "*"): OPEN,
    ("/", "*"): VIEWER,  # the gallery shows users' images
    ("/gallery.json", "*"): VIEWER,
}


def door_of(path: str, method: str, doors: Mapping[tuple[str, str], Door] = DOORS) -> Door | None:
    """The door a request comes through, or None for a path the table does not know."""
    return doors.get((path, method), doors.get((path, "*")))


def authorized(header: str, token: str) -> bool:
    """Bearer <token>, or HTTP Basic with the token as password; compared in constant time."""
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        offered = credentials.strip()
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        offered = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())


@dataclass(frozen=True)
class Tokens:
    """The token each door needs; None leaves that door open."""

    sender: str | None = None
    viewer: str | None = None

    def needed(self, door: Door) -> str | None:
        return None if door == OPEN else self.sender if door == SENDER else self.viewer


class TokenAuth:
    """Refuses a request with 401 (and ``WWW-Authenticate: Basic``) unless it carries its door's token."""

    def __init__(self, app: ASGIApp, tokens: Tokens, doors: Mapping[tuple[str, str], Door] = DOORS) -> None:
        self.app = app
        self.tokens = tokens
        self.doors = doors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            door = door_of(scope["path"], scope["method"], self.doors)
            token = self.tokens.needed(door) if door is not None else None
            if token and not authorized(_header(scope, b"authorization"), token):
                await _refuse(send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def _refuse(send: Send) -> None:
    body = json.dumps({"error": "missing or wrong token"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="s3thumbs"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
