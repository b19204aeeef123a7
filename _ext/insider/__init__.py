"""The book's own Sphinx behaviour, in one small local extension.

- sourcerefs: {envoy}/{istio}/{ztunnel}/{istio-api} path roles and *-sym symbol roles,
  resolved against the pinned indexes in _refs/; the {zh} role.
- diagrams: Mermaid diagrams as translatable, cached, clickable static SVG.
- configcheck: Envoy and Istio YAML examples validated against the pinned APIs.
- search: Chinese search that works in the browser (sphinx-doc/sphinx#14229).
- editions: language switcher, hreflang alternates and sitemap for the two editions.
- printed: the preface as one chapter of the PDF.
- lightpages, icons: light pages (no FontAwesome, no search index outside search, deferred
  scripts, slimmed theme CSS, a description per page).
"""

from . import configcheck, diagrams, editions, lightpages, printed, search, sourcerefs


def setup(app):
    for module in (sourcerefs, diagrams, configcheck, search, editions, printed, lightpages):
        module.setup(app)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
