"""Who may open which door of the receiver: an ASGI middleware with the table written out.

Senders post notifications; viewers look at the gallery. Each door needs its own token, or none
(``OPEN``), and neither token opens the other door: a browser keeps the Basic credentials it was
given, so a viewer's browser must hold nothing that posts events. Tokens come as
``Authorization: Bearer <token>`` (what MinIO sends) or HTTP Basic with the token as password (what
an SNS subscription URL ``https://user:token@host/events`` sends), and are compared in constant time.
The sender's door refuses browsers (403): no sender sends ``Origin`` or ``Sec-Fetch-Site``, while a
page on another site can make a browser post. A viewer's door without a token (``s3thumbs dev`` on
loopback) answers loopback host names only, so a page whose name was rebound to 127.0.0.1 cannot
read it. A path not in the table is left to routing (404).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
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


def from_browser(origin: str | None, fetch_site: str | None) -> bool:
    """True for a request a web page made: an ``Origin``, or ``Sec-Fetch-Site`` other than ``none``
    (``none`` is a user's own navigation: typed, or a bookmark)."""
    return origin is not None or (fetch_site is not None and fetch_site.strip().lower() != "none")


def is_loopback_host(host: str) -> bool:
    """True for a ``Host`` header naming this machine: localhost, 127.0.0.0/8 or [::1], any port."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Tokens:
    """The token each door needs; None leaves that door open (the viewer's, with ``local_viewers``, to
    loopback host names only)."""

    sender: str | None = None
    viewer: str | None = None
    local_viewers: bool = False

    def needed(self, door: Door) -> str | None:
        return None if door == OPEN else self.sender if door == SENDER else self.viewer


class TokenAuth:
    """Refuses a request with 401 (and ``WWW-Authenticate: Basic``) unless it carries its door's token,
    and with 403 a browser at the sender's door or a foreign host name at an open local viewer's door."""

    def __init__(self, app: ASGIApp, tokens: Tokens, doors: Mapping[tuple[str, str], Door] = DOORS) -> None:
        self.app = app
        self.tokens = tokens
        self.doors = doors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (door := door_of(scope["path"], scope["method"], self.doors)) is not None:
            refusal = self._refusal(scope, door)
            if refusal is not None:
                await _answer(send, *refusal)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, door: Door) -> tuple[int, str, str | None] | None:
        """(status, why, realm of the Basic challenge) for a request this door refuses, else None."""
        if door == SENDER and from_browser(_header(scope, b"origin"), _header(scope, b"sec-fetch-site")):
            return 403, "browser requests cannot post events", None
        token = self.tokens.needed(door)
        if token and not authorized(_header(scope, b"authorization") or "", token):
            return 401, "missing or wrong token", "s3thumbs gallery" if door == VIEWER else "s3thumbs"
        if door == VIEWER and token is None and self.tokens.local_viewers:
            if not is_loopback_host(_header(scope, b"host") or ""):
                return 403, "without S3THUMBS_GALLERY_TOKEN the gallery answers this machine's names only", None
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(send: Send, status: int, why: str, realm: str | None) -> None:
    body = json.dumps({"error": why}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if realm is not None:
        headers.append((b"www-authenticate", f'Basic realm="{realm}"'.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
