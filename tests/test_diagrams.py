"""Diagrams: rendered ahead of time, inlined with a text alternative, linked to the source."""

from __future__ import annotations

import re

from conftest import LANGUAGES, ROOT, pages

from insider.diagrams import RENDERS_DIR, inline_svg


def test_every_render_in_the_cache_is_used_by_a_page(site):
    used = set()
    for language in LANGUAGES:
        used |= set((site / language / ".diagram-keys").read_text().split())
    cached = {p.stem for p in RENDERS_DIR.glob("*.svg")}
    assert used, "the book has no diagrams?"
    assert used <= cached  # the build already fails otherwise; this guards the key list itself
    assert not cached - used, f"renders no page uses (run `make diagrams` to prune): {sorted(cached - used)}"


def test_renders_carry_real_text_and_no_external_references():
    for svg in RENDERS_DIR.glob("*.svg"):
        text = svg.read_text(encoding="utf-8")
        assert "<foreignObject" not in text, svg.name
        assert "<text" in text, svg.name
        hrefs = re.findall(r'(?:xlink:)?href="([^"]+)"', text)
        assert all(h.startswith(("#", "https://github.com/")) for h in hrefs), (svg.name, hrefs)
        assert "@import" not in text and "url(http" not in text, svg.name


def test_inline_svg_gets_role_and_alt():
    svg = '<?xml version="1.0"?><svg id="d" role="graphics-document document" aria-roledescription="flowchart-v2"><g/></svg>'
    out = inline_svg(svg, 'A "quoted" alt', has_links=False)
    assert out.startswith('<svg id="d" role="img" aria-label="A &quot;quoted&quot; alt" focusable="false">')
    assert 'role="group"' in inline_svg(svg, "alt", has_links=True)


def test_diagrams_on_pages_are_svg_with_a_text_alternative(site):
    count = 0
    for language in LANGUAGES:
        for page in pages(site, language):
            html = (site / language / page).read_text(encoding="utf-8")
            for block in re.findall(r'<div class="insider-diagram".*?</div>\n', html, re.S):
                count += 1
                svg_open = re.search(r"<svg\b[^>]*>", block).group(0)
                assert re.search(r'aria-label="[^"]{10,}"', svg_open), (language, page)
                assert re.search(r'role="(img|group)"', svg_open), (language, page)
                full = re.search(r'class="insider-diagram__full" href="([^"]+)"', block).group(1)
                assert (site / language / page).parent.joinpath(full).resolve().is_file(), (language, page, full)
    assert count >= 8


def test_diagram_links_point_at_the_pinned_source(site):
    links = set()
    for page in pages(site, "zh_CN"):
        html = (site / "zh_CN" / page).read_text(encoding="utf-8")
        for block in re.findall(r"<svg\b.*?</svg>", html, re.S):
            links |= set(re.findall(r'xlink:href="([^"]+)"', block))
    assert links, "no diagram links to the source"
    pinned = ("https://github.com/envoyproxy/envoy/blob/v1.39.0/", "https://github.com/istio/istio/blob/1.30.3/",
              "https://github.com/istio/ztunnel/blob/1.30.3/", "https://github.com/istio/api/blob/v1.30.3/")
    assert all(link.startswith(pinned) for link in links), links


def test_english_diagrams_have_their_own_renders(site):
    zh = set((site / "zh_CN" / ".diagram-keys").read_text().split())
    en = set((site / "en" / ".diagram-keys").read_text().split())
    assert en, "the English edition has no diagrams"
    assert len(en - zh) >= len(en) // 2, "most English diagrams should differ from the Chinese ones"


def test_mermaid_is_never_loaded_by_readers(site):
    for language in LANGUAGES:
        for page in pages(site, language):
            html = (site / language / page).read_text(encoding="utf-8")
            assert "mermaid.esm" not in html and "cdn.jsdelivr" not in html, page
