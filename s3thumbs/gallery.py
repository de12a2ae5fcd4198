"""The gallery: the receiver's page of recent uploads, each original beside its thumbnails.

One HTML page with its script inline (no build step, nothing fetched from the internet) polls
``/gallery.json``. Images are shown through presigned GET links (``links.Links``), so the receiver
never reads an object; statuses come from the status store in the result backend's Redis. Only what
a worker rendered, in an allowed bucket, gets links: a notification can name any object, and the
gallery must never hand out a download link for whatever it named. A record it cannot show is left
out (and logged), so one forged record never takes the page down.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from s3thumbs.errors import StoreUnavailable
from s3thumbs.keys import Layout, name_problem
from s3thumbs.links import Links
from s3thumbs.placeholder import data_url
from s3thumbs.status import Record, Statuses

logger = logging.getLogger(__name__)

# Originals larger than this are linked, not shown: the page must stay light with 50 MP photos.
INLINE_ORIGINAL_BYTES = 8 * 1024 * 1024
# Statuses a worker writes once it has rendered the source: only these get links.
RENDERED = frozenset({"written", "current"})
NO_STORE = (
    "No status store: set S3THUMBS_RESULT_BACKEND to a redis:// URL (the receiver and the "
    "workers must share it) to see what happened to each upload."
)


@dataclass(frozen=True)
class Gallery:
    """What the page needs: where statuses are, how to link to objects, where thumbnails go, which buckets
    may be linked (None: any)."""

    store: Statuses | None
    links: Links
    layout: Layout
    buckets: frozenset[str] | None = None
    limit: int = 60

    def items(self) -> dict[str, Any]:
        """The page's data: the newest records, each with presigned links where a worker rendered it."""
        if self.store is None:
            return {"message": NO_STORE, "items": []}
        shown = (self._shown(record) for record in self.store.recent(self.limit))
        return {"message": None, "items": [item for item in shown if item is not None]}

    def _shown(self, record: Record) -> dict[str, Any] | None:
        try:
            return self._item(record)
        except Exception as e:  # whatever is wrong with one record, the others are shown
            logger.warning("gallery: left out s3://%s/%s, which it cannot show: %s", record.bucket, record.key, e)
            return None

    def _item(self, record: Record) -> dict[str, Any]:
        if name_problem(record.bucket, record.key):
            raise ValueError(name_problem(record.bucket, record.key))
        linked = record.status in RENDERED and (self.buckets is None or record.bucket in self.buckets)
        version = f"{record.etag}:{record.at}"
        original = self.links.url(record.bucket, record.key, version) if linked else None
        thumbnails = []
        for thumb in record.thumbnails:
            if not isinstance(thumb, Mapping) or not isinstance(thumb.get("key"), str):
                raise ValueError(f"a thumbnail without a key: {thumb!r}"[:200])
            key = thumb["key"]
            url = None
            if linked and self.layout.is_thumbnail_of(key, record.bucket, record.key):
                url = self.links.url(self.layout.output_bucket(record.bucket), key, version)
            thumbnails.append(
                {
                    "key": key,
                    "width": thumb.get("width"),
                    "height": thumb.get("height"),
                    "bytes": thumb.get("bytes"),
                    "fit": "cover" if thumb.get("fit") == "cover" else "inside",
                    "url": url,
                }
            )
        return {
            "bucket": record.bucket,
            "key": record.key,
            "status": record.status,
            "reason": record.reason,
            "ms": record.ms,
            "at": record.at,
            "size": record.size,
            "shown": list(record.shown) if record.shown and all(isinstance(v, int) for v in record.shown) else None,
            "original": original,
            # Only originals that rendered are shown inline: a browser cannot show the others either.
            "inline": original is not None and (record.size or 0) <= INLINE_ORIGINAL_BYTES,
            "thumbnails": thumbnails,
            # Shown behind each thumbnail until it loads.
            "placeholder": data_url(record.thumbhash) if linked and isinstance(record.thumbhash, str) else None,
        }

    async def page(self, request: Request) -> Response:
        """``GET /``: the page itself."""
        return HTMLResponse(PAGE.replace("{{title}}", html.escape("s3thumbs")), headers=HEADERS)

    async def data(self, request: Request) -> Response:
        """``GET /gallery.json``: what the page shows, polled by its script."""
        try:
            body = await asyncio.to_thread(self.items)
        except StoreUnavailable as e:  # the page says why it shows no statuses
            return JSONResponse({"message": str(e), "items": []}, status_code=503, headers=HEADERS)
        return JSONResponse(body, headers=HEADERS)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} gallery</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f4f6; color: #222; }
  header { background: #1f2937; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { color: #cbd5e1; }
  #message { margin: 16px 20px; padding: 12px; background: #fff7d6; border: 1px solid #e5c55a; display: none; }
  main { padding: 12px 20px; display: grid; gap: 12px; }
  .item { background: #fff; border-radius: 6px; padding: 12px; box-shadow: 0 1px 2px #0002;
          display: grid; grid-template-columns: 220px 1fr; gap: 16px; }
  .original img { max-width: 220px; max-height: 165px; display: block; background: #eee; }
  .name { font-weight: 600; word-break: break-all; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #fff; }
  .queued { background: #6b7280; } .written, .current { background: #15803d; }
  .skipped { background: #a16207; } .failed { background: #b91c1c; } .deleted, .gone { background: #475569; }
  .thumbs { display: flex; gap: 12px; align-items: flex-end; flex-wrap: wrap; margin-top: 8px; }
  .thumbs figure { margin: 0; font-size: 12px; color: #555; }
  .thumbs img { display: block; max-width: 256px; max-height: 192px; background: #eee; }
  .reason { color: #b91c1c; }
  .empty { color: #666; }
</style>
</head>
<body>
<header><h1>{{title}}</h1><span id="summary">loading…</span></header>
<div id="message"></div>
<main id="items"></main>
<script>
"use strict";
const REFRESH_MS = 3000;
const LABEL = {queued: "queued", written: "done", current: "done (already current)", skipped: "skipped",
               failed: "failed", deleted: "deleted", gone: "gone"};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
}

function ago(epoch) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epoch));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}

function originalLink(item) {
  return el("a", {href: item.original}, "original" + (item.size ? " (" + bytes(item.size) + ")" : ""));
}

function card(item) {
  let original = el("span", {}, "");
  if (item.original && item.inline) {
    const picture = el("img", {src: item.original, alt: item.key, loading: "lazy"});
    // A format the browser cannot show (HEIC in most): the link instead of a broken image.
    picture.addEventListener("error", () => picture.parentNode.replaceWith(originalLink(item)), {once: true});
    original = el("a", {href: item.original}, picture);
  } else if (item.original) {
    original = originalLink(item);
  }
  const status = el("span", {class: "badge " + item.status, "data-status": item.status},
                    LABEL[item.status] || item.status);
  const details = [item.ms !== null && item.ms !== undefined ? "rendered in " + Math.round(item.ms) + " ms" : "",
                   item.size ? "source " + (item.shown ? item.shown[0] + "×" + item.shown[1] + ", " : "")
                     + bytes(item.size) : "", ago(item.at)].filter(Boolean).join(" · ");
  const thumbs = el("div", {class: "thumbs"});
  for (const t of item.thumbnails) {
    const caption = el("figcaption", {}, t.width + "×" + t.height + (t.fit === "cover" ? " cover" : "")
                       + " · " + bytes(t.bytes));
    if (!t.url) { thumbs.append(el("figure", {class: "thumb"}, caption)); continue; }
    const picture = el("img", {src: t.url, alt: t.key, loading: "lazy", width: t.width, height: t.height});
    if (item.placeholder) {  // the ThumbHash, drawn until the thumbnail has loaded
      picture.style.backgroundImage = "url(" + item.placeholder + ")";
      picture.style.backgroundSize = "100% 100%";
    }
    thumbs.append(el("figure", {class: "thumb"}, picture, caption));
  }
  const info = el("div", {}, el("div", {class: "name"}, item.bucket + "/" + item.key), status, " ",
                  el("span", {}, details));
  if (item.reason) info.append(el("div", {class: "reason"}, item.reason));
  info.append(thumbs);
  return el("section", {class: "item", "data-key": item.key}, el("div", {class: "original"}, original), info);
}

async function refresh() {
  try {
    // Not relative to location.href: when the page was opened with credentials in its address
    // (viewer:TOKEN@host), that URL carries them, and fetch refuses it. The browser still sends them.
    const url = new URL("gallery.json", location.origin + location.pathname);
    const response = await fetch(url, {cache: "no-store", credentials: "same-origin"});
    const body = await response.json();
    const message = document.getElementById("message");
    message.textContent = body.message || "";
    message.style.display = body.message ? "block" : "none";
    const items = document.getElementById("items");
    items.replaceChildren(...body.items.map(card));
    if (!body.items.length && !body.message) {
      items.append(el("p", {class: "empty"}, "Nothing yet: upload an image to a watched bucket."));
    }
    const counts = {};
    for (const item of body.items) counts[item.status] = (counts[item.status] || 0) + 1;
    document.getElementById("summary").textContent = body.items.length + " recent objects" +
      Object.entries(counts).map(([k, v]) => " · " + v + " " + (LABEL[k] || k)).join("") +
      " · updated " + new Date().toLocaleTimeString();
  } catch (error) {
    document.getElementById("summary").textContent = "cannot reach the receiver: " + error;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""


def _digest(tag: str) -> str:
    """The CSP source of the page's one inline ``<tag>`` element: its SHA-256."""
    body = re.search(f"<{tag}>(.*?)</{tag}>", PAGE, re.DOTALL)
    assert body is not None, tag
    return "'sha256-" + base64.b64encode(hashlib.sha256(body[1].encode()).digest()).decode() + "'"


# Not framed (clickjacking), no Referer (the page's address and the presigned links stay here), no
# sniffing, nothing kept by caches; the page runs its own script and style only, and fetches only
# from itself (images come from S3, wherever it is).
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_digest('script')}; style-src {_digest('style')}; "
        "img-src http: https: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
