"""What a reader meets: diagrams legible where they stand, identifiers that break only between
their parts, an interface in the edition's language, search snippets from the prose.

Measured in headless Chromium on both editions at 1280 px (a laptop) and 390 px (a phone).
Each check is shown to fail on a planted fault.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from conftest import LANGUAGES, pages
from served import launch
from survey import BREAKS_JS, DIAGRAMS_JS, WIDTHS

playwright = pytest.importorskip("playwright.sync_api")

SMALLEST_TEXT_PX = 12

@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def diagram_problems(diagrams: list[dict], width: int) -> list[str]:
    """What is wrong with the diagrams of a page as measured at ``width`` px (survey.DIAGRAMS_JS)."""
    problems = []
    for d in diagrams:
        if d["smallest"] < SMALLEST_TEXT_PX:
            problems.append(f"diagram {d['index']} ({d['label']}…): labels {d['smallest']:.1f} px at {width} px")
        if width >= 1280 and d["scrolls"]:
            problems.append(f"diagram {d['index']} ({d['label']}…): wider than the text column at {width} px")
    return problems


@pytest.mark.parametrize("language", LANGUAGES)
def test_diagram_labels_are_legible_and_diagrams_fit_the_column(visits, language):
    """Labels at least 12 px at both widths; at 1280 px no diagram scrolls inside its panel (at
    390 px one that cannot fit keeps its size and scrolls)."""
    problems = []
    measured = 0
    for rel, visit in visits[language].items():
        for width in WIDTHS:
            diagrams = visit.layouts[width].diagrams
            measured += len(diagrams)
            problems += [f"{language}/{rel}: {p}" for p in diagram_problems(diagrams, width)]
    assert measured > 2 * 50, measured
    assert not problems, "\n".join(problems)


def test_diagram_check_finds_a_diagram_too_wide_and_text_too_small(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site_url}/zh_CN/ch0/index.html")
    assert not diagram_problems(page.evaluate(DIAGRAMS_JS), 1280)
    page.evaluate("document.querySelector('.insider-diagram__canvas svg').style.minWidth = '2400px'")
    assert any("wider than the text column" in p for p in diagram_problems(page.evaluate(DIAGRAMS_JS), 1280))
    page.evaluate("const s = document.querySelector('.insider-diagram__canvas svg'); s.style.minWidth = '0'; s.style.maxWidth = '200px'")
    assert any("labels" in p for p in diagram_problems(page.evaluate(DIAGRAMS_JS), 1280))
    context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_identifiers_in_tables_break_only_between_their_parts(visits, language):
    problems = [
        f"{language}/{rel} at {width} px: {b}"
        for rel, visit in visits[language].items()
        for width, layout in visit.layouts.items()
        for b in layout.breaks
    ]
    measured = sum(layout.table_codes for visit in visits[language].values() for layout in visit.layouts.values())
    assert measured > 2 * 100, f"only {measured} identifiers in tables were measured"
    assert not problems, "\n".join(problems[:30])


def test_break_check_finds_an_identifier_chopped_mid_word(browser, site_url):
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    page.goto(f"{site_url}/en/ch0/index.html")
    page.evaluate("""document.querySelector('article').insertAdjacentHTML('beforeend',
      '<table style="width:120px;table-layout:fixed"><tr><td style="width:120px">' +
      '<code class="docutils literal" style="overflow-wrap:anywhere">averyveryverylongidentifierwithoutseparators</code>' +
      '</td></tr></table>')""")
    assert page.evaluate(BREAKS_JS)["bad"]
    context.close()


# -- The interface speaks the edition's language -----------------------------------------------

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
UI_ATTRIBUTES = ("aria-label", "title", "placeholder", "data-bs-title")
# Latin text the Chinese edition's interface may show: names, file types, keys, the switcher
# to the English edition, and the licence names and the book's title in the footer.
LATIN_ALLOWED = re.compile(
    r"^(English|Istio|Envoy|ztunnel|GitHub|PDF|EPUB|\.md|\.pdf|\.epub|Ctrl|K|\+|Markdown|"
    r"Envoy v1\.39\.0 · Istio 1\.30\.3 · ztunnel 1\.30\.3|Istio & Envoy)$"
)


class InterfaceText(HTMLParser):
    """Interface strings: attribute labels and text outside the article body."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []
        self.found: list[str] = []

    def _hidden(self) -> bool:
        """Not interface text: scripts, drawings, the article, and the entries of the navigation
        (page and section titles are content; the navigation's own labels are still checked)."""
        return any(tag in ("script", "style", "svg", "template", "nav") for tag, _ in self.stack) or any(
            tag == "article" and "bd-article" in classes.split() for tag, classes in self.stack
        )

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if not self._hidden():
            self.found += [attrs[a] for a in UI_ATTRIBUTES if attrs.get(a)]
        if tag not in self.VOID:
            self.stack.append((tag, attrs.get("class") or ""))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if data.strip() and not self._hidden():
            self.found.append(data.strip())


def wrong_language(html: str, language: str) -> list[str]:
    parser = InterfaceText()
    parser.feed(html)
    if language == "zh_CN":
        # Chapter titles in the navigation are content (Chinese, with names such as Envoy in them).
        return [t for t in parser.found if not HAN.search(t) and re.search(r"[A-Za-z]{2,}", t) and not LATIN_ALLOWED.match(t)]
    return [t for t in parser.found if HAN.search(t) and t != "中文"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_interface_is_in_the_editions_language(site, language):
    offenders = {}
    for rel in pages(site, language):
        found = wrong_language((site / language / rel).read_text(encoding="utf-8"), language)
        if found:
            offenders[rel] = sorted(set(found))[:8]
    assert not offenders, f"interface text in the wrong language ({language}): {offenders}"


def test_interface_check_finds_an_english_label_in_the_chinese_edition(site):
    html = (site / "zh_CN" / "ch0" / "index.html").read_text(encoding="utf-8")
    assert not wrong_language(html, "zh_CN")
    planted = html.replace("</body>", '<button title="Toggle primary sidebar">x</button></body>')
    assert "Toggle primary sidebar" in wrong_language(planted, "zh_CN")
    english = (site / "en" / "ch0" / "index.html").read_text(encoding="utf-8")
    assert not wrong_language(english, "en")
    assert "本页目录" in wrong_language(english.replace("</body>", '<nav aria-label="本页目录">x</nav></body>'), "en")


# -- Search results show prose -------------------------------------------------------------------

NOT_PROSE = ("System Settings", "跟随系统", "亮色", "暗色", "目录", "Color mode", "Contents")


@pytest.mark.parametrize("language, query", [("zh_CN", "线程本地存储"), ("en", "thread-local")])
def test_search_snippets_come_from_the_prose(browser, site_url, language, query):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site_url}/{language}/search.html?q={query}")
    page.wait_for_selector("#search-results li p.context", timeout=20000)
    snippets = page.eval_on_selector_all("#search-results li p.context", "els => els.map(e => e.textContent)")
    context.close()
    assert snippets
    noisy = [s for s in snippets if any(word in s for word in NOT_PROSE)]
    assert not noisy, noisy[:3]
