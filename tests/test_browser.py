"""Every page of both editions in headless Chromium (Debian's), served from 127.0.0.1."""

from __future__ import annotations

import re

import pytest
from conftest import LANGUAGES, pages
from served import launch, load, over_budget
from survey import SIDEWAYS_JS

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def open_page(browser, url):
    """Load a page; return (page, console errors, requests that left 127.0.0.1)."""
    result, page = load(browser, url, keep_open=True)
    return page, result.errors, result.external


def scrolls_sideways(page, width: int) -> bool:
    """Whether the page body is wider than a ``width`` px screen (code and tables may scroll
    inside their own boxes; the page itself must not)."""
    page.set_viewport_size({"width": width, "height": 900})
    return page.evaluate(SIDEWAYS_JS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_loads_cleanly_light_and_local(visits, site, site_url, language):
    """First visit of every page, served with gzip: no console error, no request leaving the
    site, every diagram with its alt text, the weight within the budget, and a body that
    fits a phone (390 px) and a laptop (1280 px) without sideways scrolling."""
    problems, weights = [], {}
    assert sorted(visits[language]) == pages(site, language)
    for rel, visit in visits[language].items():
        result = visit.load
        broken = [s for s in visit.alts if len(s) < 10]
        switcher = visit.switcher if rel not in ("search.html", "genindex.html") else None
        other = "en" if language == "zh_CN" else "zh_CN"
        wrong_switch = switcher and switcher.split("#")[0] != f"{site_url}/{other}/{rel}"
        too_wide = [w for w, layout in visit.layouts.items() if layout.sideways]
        weights[rel] = result.weight
        heavy = over_budget(rel, result.weight)
        found = {
            "console errors": result.errors[:3],
            "requests off the site": result.external[:3],
            "diagrams without alt text": len(broken),
            "over the weight budget": heavy,
            "body scrolls sideways at widths": too_wide,
            "switcher leads elsewhere than the same page in the other edition": switcher if wrong_switch else None,
        }
        problems += [f"{language}/{rel}: {what}: {value}" for what, value in found.items() if value]
    assert not problems, "\n".join(problems)
    # The loads were real: every page brought at least its HTML and the theme's stylesheet.
    assert min(weights.values()) > 20 * 1024, weights


# Every page's switcher link is checked above; following it is checked on one page of each kind.
SWITCHED = ["index.html", "ch0/index.html", "ch2-envoy/index.html", "ch2-envoy/threading-model.html", "glossary.html"]


@pytest.mark.parametrize("language, other", [("zh_CN", "en"), ("en", "zh_CN")])
def test_switcher_reaches_the_same_page_in_the_other_edition(browser, site, site_url, language, other):
    for rel in SWITCHED:
        page, _, _ = open_page(browser, f"{site_url}/{language}/{rel}")
        page.click("a.insider-switcher")
        page.wait_for_load_state()
        assert page.url.split("#")[0] == f"{site_url}/{other}/{rel}", (rel, page.url)
        assert page.title(), rel
        page.context.close()


@pytest.mark.parametrize("language, other", [("zh_CN", "en"), ("en", "zh_CN")])
def test_switcher_keeps_the_readers_section(browser, site, site_url, language, other):
    """A reader halfway down a page lands on the same section in the other edition."""
    rel = "ch2-envoy/threading-model.html"
    html = (site / language / rel).read_text(encoding="utf-8")
    section = re.findall(r'<section id="([^"]+)"', html)[3]
    assert f'<section id="{section}"' in (site / other / rel).read_text(encoding="utf-8"), "section ids differ between editions"
    page, _, _ = open_page(browser, f"{site_url}/{language}/{rel}#{section}")
    page.click("a.insider-switcher")
    page.wait_for_load_state()
    assert page.url == f"{site_url}/{other}/{rel}#{section}", page.url
    assert page.evaluate("window.scrollY") > 200, "the other edition opened at the top, not at the section"
    page.context.close()


TOUCH_TARGET_PX = 44  # WCAG 2.5.5 and the platforms' guidelines
HEADER_CONTROLS_JS = """() => [...document.querySelectorAll('.bd-header-article a, .bd-header-article button')]
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; })
  .map(e => { const r = e.getBoundingClientRect();
              return {name: e.getAttribute('aria-label') || e.title || e.textContent.trim(), width: r.width, height: r.height, right: r.right}; })"""


def small_targets(page) -> list[str]:
    controls = page.evaluate(HEADER_CONTROLS_JS)
    assert len(controls) >= 5, controls
    return [f"{c['name']}: {c['width']:.0f} x {c['height']:.0f} px" for c in controls
            if min(c["width"], c["height"]) < TOUCH_TARGET_PX - 0.5 or c["right"] > 390]  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_header_controls_are_touch_sized_on_a_phone(browser, site_url, language):
    """At 390 px every header control is at least 44 x 44 px and inside the screen; a control
    shrunk by a planted style is reported."""
    result, page = load(browser, f"{site_url}/{language}/ch2-envoy/threading-model.html", width=390, keep_open=True)
    assert not small_targets(page), small_targets(page)
    page.add_style_tag(content=".bd-header-article .search-button { min-height: 0 !important; height: 30px; }")
    assert any("30 px" in s for s in small_targets(page)), small_targets(page)
    page.context.close()


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
    page.context.close()
    assert not errors, errors
    assert any(re.match(rf"^(\.\./)*{re.escape(expected)}", h or "") for h in hrefs), hrefs


def test_root_page_offers_both_editions(browser, site_url):
    page, errors, external = open_page(browser, f"{site_url}/index.html")
    assert not errors and not external
    # Chromium's language here is English, so the root page forwards to the English edition.
    assert page.url.endswith("/en/index.html")
    page.context.close()


def test_diagram_nodes_are_links_to_the_source(browser, site_url):
    page, _, _ = open_page(browser, f"{site_url}/zh_CN/ch0/index.html")
    hrefs = page.eval_on_selector_all(
        ".insider-diagram__canvas svg a", "els => els.map(e => e.getAttribute('xlink:href') || e.getAttribute('href'))"
    )
    page.context.close()
    assert hrefs and all(h.startswith("https://github.com/") for h in hrefs), hrefs


def test_sideways_check_sees_a_body_wider_than_the_screen(browser, site_url):
    """The layout check above can fail: a 2000 px block in the article makes it fire."""
    page, _, _ = open_page(browser, f"{site_url}/en/ch0/index.html")
    assert not scrolls_sideways(page, 390)
    page.evaluate("document.querySelector('article').insertAdjacentHTML('beforeend', '<div style=\"width:2000px\">x</div>')")
    assert scrolls_sideways(page, 390)
    page.context.close()
