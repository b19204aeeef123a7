"""The built site as a reader gets it: served on 127.0.0.1 with gzip, loaded in Chromium.

Shared by the tests (weight budget, no request leaves the site) and by `make bench-site`.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from system import chromium

# Compressed the way a CDN or nginx does it: text types only, level 6.
COMPRESSIBLE = (".html", ".css", ".js", ".svg", ".json", ".xml", ".txt", ".map", ".inv")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, gzip-encoded for clients that accept it; compressed bodies are cached."""

    _cache: dict[tuple[str, float], bytes] = {}
    _lock = threading.Lock()

    def log_message(self, *args):
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and path.suffix in COMPRESSIBLE and path.is_file()):
            return super().send_head()
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            body = self._cache.get(key)
            if body is None:
                body = self._cache[key] = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        return _Body(body)


class _Body:
    """What send_head returns: something copyfile() can read and close."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, size=-1):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` with gzip on a free port of 127.0.0.1; yield the base URL."""
    handler = functools.partial(GzipHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)


@dataclass
class PageLoad:
    """One first visit (empty cache) of a page."""

    url: str
    transfers: dict[str, int] = field(default_factory=dict)  # URL -> bytes on the wire
    external: list[str] = field(default_factory=list)  # requests that tried to leave the site
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    @property
    def weight(self) -> int:
        return sum(self.transfers.values())


def is_local(url: str) -> bool:
    return url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost")


def load(browser, url: str, *, color_scheme: str = "light", width: int = 1280, keep_open=False):
    """Open ``url`` in a fresh context; block and record any request that leaves the site.

    Returns the PageLoad, and the open page too when ``keep_open`` (the caller closes it).
    """
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
    page = context.new_page()
    result = PageLoad(url)
    page.on("console", lambda m: result.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.errors.append(str(e)))

    def count(request):
        if request.url.startswith(("data:", "blob:")):
            return
        sizes = request.sizes()
        result.transfers[request.url] = sizes["responseBodySize"] + sizes["responseHeadersSize"]

    def route(r):
        if is_local(r.request.url):
            r.continue_()
        else:
            result.external.append(r.request.url)
            r.abort()

    page.on("requestfinished", count)
    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    if keep_open:
        return result, page
    context.close()
    return result


# -- Budgets: bytes on the wire (gzip, headers included) of a first visit -------------

TYPICAL_PAGE_BUDGET = 250 * 1024  # every chapter page, the preface, the glossary
LARGEST_PAGE_BUDGET = 400 * 1024  # any page at all
# Pages that are not chapter pages: search.html loads the whole search index by design.
NOT_CHAPTER_PAGES = ("search.html", "genindex.html")


def over_budget(page: str, weight: int) -> str | None:
    """Why a page (path within its edition) breaks the weight budget, or None."""
    budget = LARGEST_PAGE_BUDGET if page in NOT_CHAPTER_PAGES else TYPICAL_PAGE_BUDGET
    if weight > budget:
        return f"{page}: {weight / 1024:.1f} KB on first visit, budget {budget / 1024:.0f} KB"
    return None

