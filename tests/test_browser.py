"""Every page of both editions in headless Chromium (Debian's), served from 127.0.0.1."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from conftest import LANGUAGES, pages

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url):
    """Load a page; return (page, console errors, requests that left 127.0.0.1)."""
    page = browser.new_page()
    errors, external = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    return page, errors, external


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_loads_cleanly_and_stays_local(browser, site, site_url, language):
    problems = {}
    for rel in pages(site, language):
        page, errors, external = open_page(browser, f"{site_url}/{language}/{rel}")
        svgs = page.eval_on_selector_all(
            ".insider-diagram__canvas > svg", "els => els.map(e => e.getAttribute('aria-label') || '')"
        )
        broken = [s for s in svgs if len(s) < 10]
        page.close()
        if errors or external or broken:
            problems[rel] = {"console": errors[:3], "external": external[:3], "diagrams without alt": len(broken)}
    assert not problems, problems


@pytest.mark.parametrize("language, other", [("zh_CN", "en"), ("en", "zh_CN")])
def test_switcher_reaches_the_same_page_in_the_other_edition(browser, site, site_url, language, other):
    for rel in pages(site, language):
        if rel in ("search.html", "genindex.html"):
            continue
        page, _, _ = open_page(browser, f"{site_url}/{language}/{rel}")
        page.click("a.insider-switcher")
        page.wait_for_load_state()
        assert page.url == f"{site_url}/{other}/{rel}", (rel, page.url)
        assert page.title(), rel
        page.close()


@pytest.mark.parametrize(
    "language, query, expected",
    [
        ("zh_CN", "服务网格", "glossary.html"),
        ("zh_CN", "控制面", "glossary.html"),
        ("en", "service mesh", "glossary.html"),
        ("en", "debounce", "glossary.html"),
    ],
)
def test_search_finds_the_right_page(browser, site_url, language, query, expected):
    page, errors, _ = open_page(browser, f"{site_url}/{language}/search.html?q={query}")
    page.wait_for_selector("#search-results li", timeout=15000)
    hrefs = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.getAttribute('href'))")
    page.close()
    assert not errors, errors
    assert any(re.match(rf"^(\.\./)*{re.escape(expected)}", h or "") for h in hrefs), hrefs


def test_root_page_offers_both_editions(browser, site_url):
    page, errors, external = open_page(browser, f"{site_url}/index.html")
    assert not errors and not external
    # Chromium's language here is English, so the root page forwards to the English edition.
    assert page.url.endswith("/en/index.html")
    page.close()


def test_diagram_nodes_are_links_to_the_source(browser, site_url):
    page, _, _ = open_page(browser, f"{site_url}/zh_CN/ch0/index.html")
    hrefs = page.eval_on_selector_all(
        ".insider-diagram__canvas svg a", "els => els.map(e => e.getAttribute('xlink:href') || e.getAttribute('href'))"
    )
    page.close()
    assert hrefs and all(h.startswith("https://github.com/") for h in hrefs), hrefs
