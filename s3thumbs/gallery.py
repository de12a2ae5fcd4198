"""The gallery: the receiver's page of recent uploads, each original beside its thumbnails.

One HTML page with its script inline (no build step, nothing fetched from the internet) polls
``/gallery.json``. Images are shown through presigned URLs, so the receiver never reads an
object; statuses come from the status store in the result backend's Redis.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from s3thumbs.errors import StoreUnavailable
from s3thumbs.keys import Layout
from s3thumbs.status import Record, Statuses

# Seconds a presigned URL stays valid: longer than the page's refresh, short enough to leak little.
URL_LIFETIME = 3600
# Originals larger than this are linked, not shown: the page must stay light with 50 MP photos.
INLINE_ORIGINAL_BYTES = 8 * 1024 * 1024
NO_STORE = (
    "No status store: set S3THUMBS_RESULT_BACKEND to a redis:// URL (the receiver and the "
    "workers must share it) to see what happened to each upload."
)

Presign = Callable[[str, str], str]


@dataclass(frozen=True)
class Gallery:
    """What the page needs: where statuses are, how to sign URLs, where thumbnails go."""

    store: Statuses | None
    presign: Presign
    layout: Layout
    limit: int = 60

    def items(self) -> dict[str, Any]:
        """The page's data: the newest records, each with presigned links where it rendered."""
        if self.store is None:
            return {"message": NO_STORE, "items": []}
        return {"message": None, "items": [self._item(record) for record in self.store.recent(self.limit)]}

    def _item(self, record: Record) -> dict[str, Any]:
        out_bucket = self.layout.output_bucket(record.bucket)
        shows_images = record.status in ("written", "current")
        original = self.presign(record.bucket, record.key) if record.status not in ("deleted", "gone") else None
        return {
            "bucket": record.bucket,
            "key": record.key,
            "status": record.status,
            "reason": record.reason,
            "ms": record.ms,
            "at": record.at,
            "size": record.size,
            "original": original,
            # Only originals that rendered are shown inline: a browser cannot show the others either.
            "inline": original is not None and shows_images and (record.size or 0) <= INLINE_ORIGINAL_BYTES,
            "thumbnails": [
                {**thumb, "url": self.presign(out_bucket, thumb["key"]) if shows_images else None}
                for thumb in record.thumbnails
            ],
        }

    async def page(self, request: Request) -> Response:
        """``GET /``: the page itself."""
        return HTMLResponse(PAGE.replace("{{title}}", html.escape("s3thumbs")))

    async def data(self, request: Request) -> Response:
        """``GET /gallery.json``: what the page shows, polled by its script."""
        try:
            body = await asyncio.to_thread(self.items)
        except StoreUnavailable as e:  # the page says why it shows no statuses
            return JSONResponse({"message": str(e), "items": []}, status_code=503)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})


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

function card(item) {
  const original = item.original && item.inline
    ? el("a", {href: item.original}, el("img", {src: item.original, alt: item.key, loading: "lazy"}))
    : item.original ? el("a", {href: item.original}, "original" + (item.size ? " (" + bytes(item.size) + ")" : ""))
    : el("span", {}, "");
  const status = el("span", {class: "badge " + item.status, "data-status": item.status},
                    LABEL[item.status] || item.status);
  const details = [item.ms !== null && item.ms !== undefined ? "rendered in " + Math.round(item.ms) + " ms" : "",
                   item.size ? "source " + bytes(item.size) : "", ago(item.at)].filter(Boolean).join(" · ");
  const thumbs = el("div", {class: "thumbs"});
  for (const t of item.thumbnails) {
    const caption = el("figcaption", {}, t.width + "×" + t.height + " · " + bytes(t.bytes));
    thumbs.append(t.url ? el("figure", {class: "thumb"}, el("img", {src: t.url, alt: t.key, loading: "lazy",
                                                                 width: t.width, height: t.height}), caption)
                        : el("figure", {class: "thumb"}, caption));
  }
  const info = el("div", {}, el("div", {class: "name"}, item.bucket + "/" + item.key), status, " ",
                  el("span", {}, details));
  if (item.reason) info.append(el("div", {class: "reason"}, item.reason));
  info.append(thumbs);
  return el("section", {class: "item", "data-key": item.key}, el("div", {class: "original"}, original), info);
}

async function refresh() {
  try {
    const response = await fetch("gallery.json", {cache: "no-store", credentials: "same-origin"});
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
