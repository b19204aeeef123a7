"""Both editions build with warnings as errors, and the English edition reads as English."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from conftest import LANGUAGES, ROOT, book_pages, pages

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Elements whose text is not shown to the reader as page text.
SKIPPED = {"script", "style", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class ChineseOutsideAllowList(HTMLParser):
    """Collects Chinese text that is not inside an element marked lang="zh-CN"."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []

    def _allowed(self) -> bool:
        return any(allowed for _, allowed in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in VOID:
            # Attribute text a reader meets: alt and aria-label, title.
            for name in ("alt", "aria-label", "title"):
                if attrs.get(name) and HAN.search(attrs[name]) and not self._allowed():
                    self.found.append(f"<{tag} {name}={attrs[name]!r}>")
            return
        allowed = (attrs.get("lang") or "").lower().startswith("zh")
        self.stack.append((tag, allowed))
        for name in ("aria-label", "title"):
            if attrs.get(name) and HAN.search(attrs[name]) and not (allowed or self._allowed()):
                self.found.append(f"<{tag} {name}={attrs[name]!r}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if any(tag in SKIPPED for tag, _ in self.stack):
            return
        if HAN.search(data) and not self._allowed():
            self.found.append(data.strip()[:80])


def chinese_outside_allow_list(html: str) -> list[str]:
    parser = ChineseOutsideAllowList()
    parser.feed(html)
    return parser.found


def test_both_editions_build_with_warnings_as_errors(site):
    for language in LANGUAGES:
        assert (site / language / "index.html").is_file()
        assert (site / language / "searchindex.js").is_file()
    assert (site / "index.html").is_file()


def test_every_source_page_is_in_both_editions(site):
    sources = [str(p.relative_to(ROOT).with_suffix(".html")) for p in book_pages()]
    assert len(sources) >= 8
    for language in LANGUAGES:
        built = set(pages(site, language))
        assert not [s for s in sources if s not in built], language


def test_english_edition_has_no_chinese_outside_the_allow_list(site):
    offenders = {}
    for page in pages(site, "en"):
        found = chinese_outside_allow_list((site / "en" / page).read_text(encoding="utf-8"))
        if found:
            offenders[page] = found[:5]
    assert not offenders, f"Chinese text in the English edition (translate it, or mark it {{zh}}): {offenders}"


def test_allow_list_detector_finds_planted_chinese():
    assert chinese_outside_allow_list("<p>service mesh 服务网格</p>") == ["service mesh 服务网格"]
    assert chinese_outside_allow_list('<p><span lang="zh-CN">服务网格</span> service mesh</p>') == []
    assert chinese_outside_allow_list('<img alt="封面" src="x.svg">') == ["<img alt='封面'>"]
    assert chinese_outside_allow_list("<script>var a='中文'</script>") == []


def test_titles_and_languages(site):
    zh = (site / "zh_CN" / "index.html").read_text(encoding="utf-8")
    en = (site / "en" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN"' in zh and "《Istio &amp; Envoy 内幕》" in zh
    assert '<html lang="en"' in en and "Istio &amp; Envoy Insider" in en
    # The front page's title is the book's title once; every other page is "page — book".
    assert "<title>《Istio &amp; Envoy 内幕》</title>" in zh and "<title>Istio &amp; Envoy Insider</title>" in en
    guide = (site / "zh_CN" / "ch0" / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<title>[^<]+ &#8212; 《Istio &amp; Envoy 内幕》</title>", guide)


def test_every_page_links_to_edit_and_to_an_issue(site):
    for language in LANGUAGES:
        for page in pages(site, language):
            if page in ("genindex.html", "search.html"):
                continue
            html = (site / language / page).read_text(encoding="utf-8")
            source = page[: -len(".html")] + ".md"
            assert f"/edit/main/{source}" in html, (language, page, "no edit link")
            assert "/issues/new?title=" in html, (language, page, "no issue link")


def test_chinese_search_loads_a_stemmer_that_exists(site):
    # Sphinx 9.0.4 would write "window.Stemmer = ChineseStemmer;" (sphinx-doc/sphinx#14229).
    data = (site / "zh_CN" / "_static" / "language_data.js").read_text(encoding="utf-8")
    assert "window.Stemmer = EnglishStemmer;" in data
    assert "ChineseStemmer" not in data
    raw = (site / "zh_CN" / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(raw[raw.index("(") + 1 : raw.rindex(")")])["terms"]
    # jieba, with the book's dictionary, keeps mesh terms whole.
    for term in ("服务网格", "控制面", "数据面", "防抖"):
        assert term in terms, term
