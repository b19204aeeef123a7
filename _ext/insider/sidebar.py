"""The sidebar's table of contents, without copying every page's headings for every page.

The book theme draws the sidebar from Sphinx's global toctree with ``titles_only=True``: a
list of page titles. Sphinx still copies each page's whole table of contents (every heading
of every page, for every page written: about 220,000 node copies for 67 pages) and only then
drops the headings. Here, while the sidebar is drawn, Sphinx sees each page's table of
contents already reduced to what ``titles_only`` keeps (the title and the toctrees under it),
made once per page and reused until the page is read again. Sphinx applies the same reduction
afterwards, so the sidebar it draws is the same: ``tests/test_shortcuts.py`` draws every
page's sidebar of both editions with and without this shortcut and compares them.

Only the case the theme uses is taken (titles only, not collapsed), and only for pages whose
table of contents has no ``only`` directive (Sphinx evaluates those before reducing).
"""

from __future__ import annotations

from contextlib import contextmanager

from sphinx import addnodes

# docname -> (the toc it was made from, the reduced toc)
_reduced: dict[str, tuple[object, object]] = {}
ENABLED = True


def reduce(toc):
    """What Sphinx keeps of a page's toc with titles_only: the same steps, done once."""
    toc = toc.deepcopy()
    for top_level in toc.children:
        if len(top_level) > 1:
            if subtrees := list(top_level.findall(addnodes.toctree)):
                top_level[1][:] = subtrees
            else:
                top_level.pop(1)
    return toc


def reduced_tocs(tocs: dict) -> dict:
    out = {}
    for docname, toc in tocs.items():
        held = _reduced.get(docname)
        if held is None or held[0] is not toc:
            plain = next(iter(toc.findall(addnodes.only)), None) is None
            held = _reduced[docname] = (toc, reduce(toc) if plain else toc)
        out[docname] = held[1]
    return out


@contextmanager
def titles_only_tocs(env):
    full = env.tocs
    env.tocs = reduced_tocs(full)
    try:
        yield
    finally:
        env.tocs = full


def page_context(app, pagename, templatename, context, doctree) -> None:
    toctree = context.get("toctree")
    if not ENABLED or toctree is None:
        return

    def sidebar_toctree(collapse=True, **kwargs):
        if kwargs.get("titles_only") and not collapse:
            with titles_only_tocs(app.env):
                return toctree(collapse=collapse, **kwargs)
        return toctree(collapse=collapse, **kwargs)

    context["toctree"] = sidebar_toctree


def setup(app):
    app.connect("html-page-context", page_context, priority=400)  # before the theme draws the sidebar (500)
