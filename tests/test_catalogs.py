"""The English catalogs: complete, current and well-formed."""

from __future__ import annotations

from conftest import ROOT

import catalogs


def test_english_catalogs_are_complete_and_current():
    found = catalogs.problems(ROOT)
    assert not found, "English catalogs:\n" + "\n".join(found)


def test_every_page_has_an_english_catalog():
    pos = {p.relative_to(ROOT / "locales" / "en" / "LC_MESSAGES").with_suffix("") for p in (ROOT / "locales/en/LC_MESSAGES").rglob("*.po")}
    for doc in ("index", "glossary", "ch0/index", "ch1-istio-arch/index", "ch2-envoy/index",
                "ch3-control-panel/index", "ch4-istio-ctrl-envoy/index", "appendix-lab-env/index"):
        assert any(str(p) == doc for p in pos), f"no catalog for {doc}"
