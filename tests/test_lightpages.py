"""Light pages (_ext/insider/lightpages.py, icons.py): the pieces, and the built site."""

from __future__ import annotations

import re

import pytest
from conftest import LANGUAGES, pages
from insider import icons, lightpages
from served import LARGEST_PAGE_BUDGET, TYPICAL_PAGE_BUDGET, over_budget

# -- The stylesheet slimmer ------------------------------------------------------------


def test_selectors_split_at_top_level_commas_only():
    assert lightpages.split_selectors(".a, .b:is(.c, .d) > p,[x='1,2']") == [".a", ".b:is(.c, .d) > p", "[x='1,2']"]


def test_names_inside_negations_and_attributes_are_not_required():
    classes, ids = lightpages.selector_names(".nav:not(.hidden) #top [class~=x] li:where(.deep)")
    assert classes == ["nav"] and ids == ["top"]


@pytest.mark.parametrize(
    "selector, kept",
    [
        (".bd-sidebar .nav-link", True),
        (".bd-sidebar .never-used", False),
        ("#main-content", True),
        ("#no-such-id", False),
        ("html[data-theme=dark] p", True),  # no class or id to miss
        (".bs-tooltip-auto .tooltip-arrow", True),  # composed by Bootstrap at run time
        (".fa-bars", False),  # FontAwesome's own: icons.py draws it
        (":is(.fas,.fab)::before", False),
        (".bd-sidebar-primary details[open]>summary .fa-chevron-down", True),  # the theme's, mentions an icon
    ],
)
def test_rules_are_kept_only_when_they_can_match(selector, kept):
    used = {"bd-sidebar", "nav-link", "main-content", "tooltip-arrow", "bd-sidebar-primary", "fa-chevron-down"}
    assert lightpages.keeps(selector, used) is kept


def test_slimming_keeps_media_blocks_that_still_match_and_drops_fontawesome_fonts():
    css = (
        "@font-face{font-family:Font Awesome\\ 7 Free;src:url(x.woff2)}"
        "@font-face{font-family:Other;src:url(y.woff2)}"
        ".used{color:red}.unused{color:blue}"
        "@media (min-width:720px){.used{margin:0}.unused{margin:1px}}"
        "@media print{.unused{display:none}}"
    )
    slim = lightpages.slim_stylesheet(css, {"used"})
    assert "Font Awesome" not in slim and "Other" in slim
    assert ".unused" not in slim and "@media print" not in slim
    assert "@media (min-width:720px){.used{margin:0}}" in slim


# -- Pages -----------------------------------------------------------------------------


def test_chapter_toggles_are_named_after_their_chapter():
    html = (
        '<a class="current reference internal" href="#">Ch "2"</a><details open="open"><summary><span></span></summary>'
        '<a class="reference internal" href="a.html">第一章</a><details><summary>'
    )
    labelled = lightpages.label_summaries(html, "en")
    assert '<summary aria-label="Pages in “Ch &quot;2&quot;”">' in labelled
    assert "<summary>" not in labelled
    assert "“第一章”的各节" in lightpages.label_summaries(html, "zh_CN")


def test_scripts_are_deferred_in_their_order():
    from sphinx.builders.html._assets import _JavaScript

    scripts = [_JavaScript("a.js"), _JavaScript(None, body="A.x = 1;"), _JavaScript("b.js", **{"async": "async"})]
    deferred = lightpages.defer_scripts(scripts)
    assert [s.filename for s in deferred] == ["a.js", None, "b.js"]
    assert deferred[0].attributes["defer"] == "defer"
    assert deferred[1].attributes["type"] == "module" and deferred[1].attributes["body"] == "A.x = 1;"
    assert "defer" not in deferred[2].attributes


def test_budget_check_names_the_page_over_budget():
    assert over_budget("ch0/index.html", TYPICAL_PAGE_BUDGET) is None
    assert "ch0/index.html" in over_budget("ch0/index.html", TYPICAL_PAGE_BUDGET + 1)
    assert over_budget("search.html", LARGEST_PAGE_BUDGET - 1) is None
    assert "search.html" in over_budget("search.html", LARGEST_PAGE_BUDGET + 1)


# -- Icons -----------------------------------------------------------------------------


def test_every_mapped_icon_is_drawn():
    drawn = set(icons.ICONS)
    assert set(icons.CLASS_ICONS.values()) <= drawn
    assert set(icons.ADMONITION_ICONS.values()) <= drawn
    css = icons.icons_css()
    for name in drawn:
        assert f"--insider-icon-{name}:url(\"data:image/svg+xml," in css


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_icon_class_in_the_pages_has_a_drawing(site, language):
    """A FontAwesome class the theme starts using would otherwise show nothing at all."""
    utilities = {"fa-solid", "fa-regular", "fa-brands", "fa-lg", "fa-fw"}
    found = set()
    for rel in pages(site, language):
        html = (site / language / rel).read_text(encoding="utf-8")
        for value in re.findall(r'class="([^"]*)"', html):
            found.update(c for c in value.split() if c.startswith("fa-"))
    assert found, "no icon classes at all: the check would be vacuous"
    assert found - utilities <= set(icons.CLASS_ICONS), found - utilities - set(icons.CLASS_ICONS)


# -- The built site --------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_load_no_fontawesome_and_search_only_where_searched(site, language):
    for rel in pages(site, language):
        html = (site / language / rel).read_text(encoding="utf-8")
        assert "fontawesome" not in html.lower(), rel
        assert ("searchindex.js" in html) == (rel == "search.html"), rel
        assert html.count('name="viewport"') == 1, rel
    static = site / language / "_static"
    assert not (static / "scripts" / "fontawesome.js").exists()
    assert not (static / "vendor" / "fontawesome").exists()
    theme_css = (static / "styles" / "pydata-sphinx-theme.css").read_text(encoding="utf-8")
    assert "vendor/fontawesome" not in theme_css and ".bd-sidebar-primary" in theme_css


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_has_its_own_description(site, language):
    descriptions = {}
    for rel in pages(site, language):
        html = (site / language / rel).read_text(encoding="utf-8")
        found = re.findall(r'<meta name="description" content="([^"]*)"', html)
        assert len(found) == 1 and len(found[0]) >= 20, (rel, found)
        descriptions[rel] = found[0]
    chapter_pages = [d for rel, d in descriptions.items() if rel.startswith("ch")]
    assert len(set(chapter_pages)) == len(chapter_pages), "two chapter pages share a description"
    if language == "en":
        assert not any(re.search(r"[\u4e00-\u9fff]", d) for d in chapter_pages), "Chinese in an English description"


@pytest.mark.parametrize("language", LANGUAGES)
def test_download_menu_offers_only_files_that_exist(site, language):
    """The theme's ".md" pointed at _sources/ with nothing in it; now it is the page's
    Markdown in the Chinese edition, and absent from the English one (which has none)."""
    checked = 0
    for rel in pages(site, language):
        if rel in ("search.html", "genindex.html"):
            continue
        html = (site / language / rel).read_text(encoding="utf-8")
        menu = html.split('class="dropdown dropdown-download-buttons"', 1)[1].split("</ul>", 1)[0]
        links = re.findall(r'<a href="([^"]+)"', menu)
        if language == "zh_CN":
            assert links, rel
        else:
            assert not links, (rel, links)
        for href in links:
            target = (site / language / rel).parent / href
            assert target.is_file() and target.read_text(encoding="utf-8").strip(), (rel, href)
            checked += 1
    assert checked or language == "en"


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_link_the_slimmed_stylesheets_by_their_content(site, language):
    """The stylesheets change with the pages; a page must name the exact version it needs."""
    static = site / language / "_static"
    for relative in lightpages.THEME_STYLESHEETS:
        expected = lightpages.digest((static / relative).read_text(encoding="utf-8"))
        for rel in pages(site, language):
            html = (site / language / rel).read_text(encoding="utf-8")
            links = re.findall(rf'_static/{re.escape(relative)}\?v=(\w+)"', html)
            assert links == [expected], (rel, relative, links)
