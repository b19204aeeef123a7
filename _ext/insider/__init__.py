"""The book's own Sphinx behaviour, in one small local extension.

- sourcerefs: {envoy}/{istio}/{ztunnel}/{istio-api} path roles and *-sym symbol roles,
  resolved against the pinned indexes in _refs/; the {zh} role.
- diagrams: Mermaid diagrams as translatable, cached, clickable static SVG.
- configcheck: Envoy and Istio YAML examples validated against the pinned APIs.
- labs, labstore: lab transcripts (real Envoy runs, stored by their inputs) shown in pages.
- search: Chinese search that works in the browser (sphinx-doc/sphinx#14229).
- editions: language switcher, hreflang alternates and sitemap for the two editions.
- printed: the preface as one chapter of the PDF.
- pinyinindex: the Chinese general index in pinyin order under A–Z.
- lightpages, icons: light pages (no FontAwesome, no search index outside search, deferred
  scripts, slimmed theme CSS, a description per page).
- speed, sidebar: build work the toolchain repeats for nothing (MyST's per-message settings
  and parser; every page's headings copied to draw each page's sidebar).
"""

from . import configcheck, diagrams, editions, flags, labs, lightpages, pinyinindex, printed, search, sidebar, sourcerefs, speed


def setup(app):
    for module in (speed, sidebar, sourcerefs, diagrams, labs, flags, configcheck, search, editions, printed, pinyinindex, lightpages):
        module.setup(app)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
