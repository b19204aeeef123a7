"""One visit to every page of an edition, measured for every page-wide browser check at once.

test_browser (clean first visit, weight, sideways scrolling, switcher) and test_reading (diagram
labels and fit, identifiers in tables) used to load each page separately: once, then again at each
width for each check. A page is now loaded once, as a first visit in a fresh context; then the
viewport is set to each width and one script measures everything that depends on the layout.
The two editions are surveyed side by side, each in its own thread with its own browser: most of
a load is waiting for the network to go idle, and two loads wait at the same time.

The checks themselves (and their planted faults) stay in the test modules; this module only
collects the measurements.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field

from served import PageLoad, launch, load

WIDTHS = (1280, 390)

# For each diagram: the smallest rendered label (its font size times the drawing's scale) and
# whether its panel scrolls sideways.
DIAGRAMS_JS = """() => [...document.querySelectorAll('.insider-diagram__canvas')].map((canvas, i) => {
  const svg = canvas.querySelector('svg');
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  let smallest = Infinity;
  for (const text of svg.querySelectorAll('text')) {
    if (!text.textContent.trim()) continue;
    smallest = Math.min(smallest, parseFloat(getComputedStyle(text).fontSize) * scale);
  }
  return {index: i, label: (svg.getAttribute('aria-label') || '').slice(0, 50), smallest,
          scrolls: canvas.scrollWidth > canvas.clientWidth + 1};
})"""

# For each inline code element in a table: the characters after which a line break happens.
# A break is fine after ::, ., /, _ , -, ~ (Istio's node ID), … (an elided prefix) or a space, or
# next to a Chinese character, and nowhere else.
BREAKS_JS = """() => {
  const bad = [], codes = document.querySelectorAll('article table code');
  for (const code of codes) {
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let previous = null, prevChar = '', text = code.textContent;
    while (walker.nextNode()) {
      const node = walker.currentNode;
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getBoundingClientRect();
        const ch = node.data[i];
        if (!rect.width && !rect.height) { if (/\\s/.test(ch)) prevChar = ' '; continue; }
        // Chinese text (a placeholder such as <角色>) may break between any two characters.
        const breakable = /[:./_~\u2026\\-\\s]/.test(prevChar) || /[\\u3000-\\u9fff]/.test(prevChar + ch);
        if (previous !== null && rect.top > previous + 2 && !breakable)
          bad.push(text.slice(0, 60) + ' | breaks after ' + JSON.stringify(prevChar));
        previous = rect.top; prevChar = ch;
      }
    }
  }
  return {checked: codes.length, bad};
}"""

# Whether the page body is wider than the screen (code and tables may scroll inside their own
# boxes; the page itself must not).
SIDEWAYS_JS = "() => document.scrollingElement.scrollWidth > window.innerWidth + 1"

# What the first-visit check reads once, whatever the width.
ONCE_JS = """() => ({
  alts: [...document.querySelectorAll('.insider-diagram__canvas > svg')].map(e => e.getAttribute('aria-label') || ''),
  switcher: (document.querySelector('a.insider-switcher') || {}).href || null,
})"""


@dataclass
class Layout:
    """What one width shows."""

    sideways: bool
    diagrams: list[dict] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)  # identifiers in tables broken mid-word
    table_codes: int = 0  # identifiers in tables measured


@dataclass
class Visit:
    """One page, visited once."""

    load: PageLoad
    alts: list[str]
    switcher: str | None
    layouts: dict[int, Layout]


def measure(page, width: int) -> Layout:
    page.set_viewport_size({"width": width, "height": 900})
    breaks = page.evaluate(BREAKS_JS)
    return Layout(
        sideways=page.evaluate(SIDEWAYS_JS),
        diagrams=page.evaluate(DIAGRAMS_JS),
        breaks=breaks["bad"],
        table_codes=breaks["checked"],
    )


def visit_edition(base_url: str, language: str, rels: list[str]) -> dict[str, Visit]:
    """Visit every page of one edition in a browser of its own (this runs in its own thread, so
    it starts its own Playwright: the sync API allows one per thread)."""
    from playwright.sync_api import sync_playwright

    visits = {}
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for rel in rels:
                result, page = load(browser, f"{base_url}/{language}/{rel}", keep_open=True)
                once = page.evaluate(ONCE_JS)
                layouts = {width: measure(page, width) for width in WIDTHS}
                page.context.close()
                visits[rel] = Visit(result, once["alts"], once["switcher"], layouts)
        finally:
            browser.close()
    return visits


def survey(base_url: str, editions: dict[str, list[str]]) -> dict[str, dict[str, Visit]]:
    """Every page of every edition, the editions side by side."""
    with concurrent.futures.ThreadPoolExecutor(len(editions)) as pool:
        futures = {language: pool.submit(visit_edition, base_url, language, rels) for language, rels in editions.items()}
        return {language: future.result() for language, future in futures.items()}
