"""The gallery's links: presigned GETs, signed once per object and window, then handed out again.

The page refreshes every few seconds. Signed afresh each time, every link would be a new URL, and the
browser would download every image again at each refresh (one idle tab: 250 MB from S3 in 15 s).
Here a link is reused for ``WINDOW`` seconds; it stays valid ``LIFETIME`` seconds from its signing,
past the window, and S3 answers it with ``CACHE_CONTROL`` (a presigned GET's ``ResponseCacheControl``),
so the browser keeps the image that long. A changed object (a new version) gets a new link at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Seconds a link is handed out again before a new one is signed.
WINDOW = 300.0
# Seconds a presigned link stays valid: the window, plus room for a page left open since.
LIFETIME = 900
# What S3 answers a presigned GET with: browsers keep the image, shared caches do not.
CACHE_CONTROL = f"private, max-age={LIFETIME}"
# Links remembered at most (a page shows 60 objects, each with a few links): the oldest go first.
KEEP = 2000

# Signs a GET of (bucket, key), valid LIFETIME seconds and answered with CACHE_CONTROL (see cli.wiring).
Presign = Callable[[str, str], str]


class Links:
    """Presigned links, each reused for ``window`` seconds; safe to call from several threads."""

    def __init__(
        self,
        presign: Presign,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        keep: int = KEEP,
    ) -> None:
        self.presign = presign
        self.window = window
        self.clock = clock
        self.keep = keep
        self._links: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def url(self, bucket: str, key: str, version: str) -> str:
        """A link to ``bucket/key`` as it is at ``version`` (anything that changes when its content does)."""
        now = self.clock()
        name = (bucket, key, version)
        with self._lock:
            found = self._links.get(name)
        if found is not None and now - found[1] < self.window:
            return found[0]
        url = self.presign(bucket, key)
        with self._lock:
            self._links.pop(name, None)
            self._links[name] = (url, now)
            self._forget(now)
        return url

    def _forget(self, now: float) -> None:
        """Drop links whose window has passed, and the oldest past ``keep``: insertion order is signing order."""
        while self._links:
            oldest, (_, signed) = next(iter(self._links.items()))
            if now - signed < self.window and len(self._links) <= self.keep:
                return
            del self._links[oldest]
