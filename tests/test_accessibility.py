"""Accessibility and valid HTML: axe-core in both colour schemes, the Nu HTML checker.

Tools from tests/site-audit (npm), Chromium from Debian. Lighthouse stays in `make bench-site`:
its scores are too noisy on a small machine to gate a test.
"""

from __future__ import annotations

import pytest
from audit import axe, tools_missing, vnu
from conftest import LANGUAGES, pages
from served import launch

playwright = pytest.importorskip("playwright.sync_api")

# One page of each kind: the preface with its cover, a chapter introduction (open sidebar
# section), a page with a wide table, one with diagrams and code, the glossary, search.
SAMPLE = (
    "index.html",
    "ch3-control-panel/index.html",
    "ch1-istio-arch/ports-and-protocols.html",
    "ch2-envoy/event-loop.html",
    "glossary.html",
    "search.html",
)


@pytest.fixture(scope="module")
def tools():
    missing = tools_missing()
    if missing:
        pytest.fail(missing)


@pytest.fixture(scope="module")
def browser(tools):
    with playwright.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing(browser, site, site_url, language, scheme):
    assert set(SAMPLE) <= set(pages(site, language)), "a sample page is gone: update SAMPLE"
    found = {}
    for rel in SAMPLE:
        violations = axe(browser, f"{site_url}/{language}/{rel}", scheme)
        if violations:
            found[rel] = violations
    assert not found, found


def test_html_is_valid_everywhere(tools, site, tmp_path):
    # A page with a duplicate id first: the checker must see it, or its silence means nothing.
    planted = tmp_path / "planted.html"
    planted.write_text('<!DOCTYPE html><html lang="en"><head><title>t</title></head>'
                       '<body><p id="a">x</p><p id="a">y</p></body></html>', encoding="utf-8")
    files = [site / language / rel for language in LANGUAGES for rel in pages(site, language)]
    files.append(site / "index.html")
    errors = vnu([planted, *files])
    assert any("Duplicate ID" in e for e in errors[str(planted)]), errors[str(planted)]
    bad = [e for path, messages in errors.items() if path != str(planted) for e in messages]
    assert not bad, "\n".join(bad[:30])
