"""Build speed: work the toolchain repeats for nothing.

The English edition replaces every paragraph, heading and cell of a page with its
translation, and Sphinx parses each translated message as a small Markdown document of its
own (about 4,000 messages for 36 pages). For each one MyST 5.2.0:

- builds docutils' default settings from scratch (an ``OptionParser`` with every option of
  every component: about 3 ms), because ``setup_render`` evaluates
  ``options.get("document", make_document())`` eagerly, although the document it makes is
  thrown away when the caller passes one (and Sphinx always does);
- builds a new markdown-it parser with all of MyST's plugins (``create_md_parser``).

Profiled on the English build, those two were about 40 % of it. This module makes the first a
copy of settings built once per parser class, and reuses one markdown-it parser per MyST
configuration. Both leave the parse itself untouched: ``tests/test_shortcuts.py`` parses
every fifth translated message with and without them and compares the resulting trees.

Sphinx 9.0.4's ``Locale`` transform then does two more things twice or more (profiled on the
English build of 67 pages: about a quarter of its time):

- It walks the page's messages twice. The first pass parses every message, but keeps the
  result only for section titles and glossary terms; the second pass parses every other
  message again, the same text for the same node. Here the second pass gets the first pass's
  tree for that node, which nothing has touched (Sphinx only moves a patch's children into the
  page when it uses the patch, and a used patch's node is not translated again).
- For every translated section title it walks the whole page looking for ``target`` nodes that
  refer to the title's old name (``refname``), although MyST pages have none. Here that walk
  is skipped when the page, and every message parsed for it, has no target with a refname.

``tests/test_shortcuts.py`` reads English pages with and without these and compares the trees.

Last, Sphinx 9.0.4 with ``-j`` forks worker processes to read or write however few pages there
are: after an edit to one page, a worker reads it and sends the whole environment back pickled
(about a second of the book's edit loop), and another worker writes it. A read or write of
fewer than ``SMALL`` pages runs in the main process here, as ``-j 1`` would run it. A larger write
uses as many workers as ``-j`` says, not one fewer: Sphinx keeps one back for the main process,
but the main process spends most of the write waiting for its single worker on a two-core machine
(measured on the Chinese edition: 16.6 s with one write worker, 15.6 s with two, medians of two).

And every build compiles the theme's Jinja templates again (a new process, or a new Sphinx
application under ``make serve``): about a quarter of a one-page rebuild. Jinja's own bytecode
cache keeps the compiled templates in the doctree folder, keyed by each template's name and
source text (and Jinja's bytecode version), so a changed template is compiled again.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import myst_parser.mdit_to_docutils.base as myst_base
import myst_parser.parsers.sphinx_ as myst_sphinx
import sphinx.transforms.i18n as sphinx_i18n
from docutils import nodes
from docutils.frontend import get_default_settings
from sphinx.builders import Builder
from docutils.utils import new_document
from sphinx.util.nodes import NodeMatcher

_ORIGINAL = {
    "make_document": myst_base.make_document,
    "create_md_parser": myst_sphinx.create_md_parser,
    "_publish_msgstr": sphinx_i18n._publish_msgstr,
    "extract_messages": sphinx_i18n.extract_messages,
    "NodeMatcher": sphinx_i18n.NodeMatcher,
    "Locale.apply": sphinx_i18n.Locale.apply,
    "_read_parallel": Builder._read_parallel,
    "_write_parallel": Builder._write_parallel,
}

SMALL = 8  # pages: below this, forking workers costs more than reading or writing in parallel saves


@cache
def _default_settings(parser_cls):
    return get_default_settings(parser_cls)


def make_document(source_path="notset", parser_cls=myst_base.RSTParser):
    """MyST's make_document with the default settings built once, not once per call."""
    return new_document(source_path, settings=copy.copy(_default_settings(parser_cls)))


_parsers: dict[int, tuple[object, object]] = {}


def create_md_parser(config, renderer):
    """One markdown-it parser per MyST configuration object (a page with its own front matter
    gets its own configuration, and so its own parser)."""
    key = (id(config), renderer)
    held = _parsers.get(key)
    if held is None or held[0] is not config:
        held = _parsers[key] = (config, _ORIGINAL["create_md_parser"](config, renderer))
    return held[1]


class _Translating:
    """What one run of the Locale transform over one page has seen so far."""

    def __init__(self, document):
        self.document = document
        self.walk = 0  # which walk over the page's messages (1: titles and terms; 2: the rest)
        self.node = None  # the message node being translated
        self.first_walk: dict[tuple[int, str], nodes.Element] = {}  # (node, msgstr) -> its parse
        self.refname_targets: bool | None = None  # does the page have a target with a refname?


_page: _Translating | None = None


def _has_refname_target(tree) -> bool:
    return any("refname" in t for t in tree.findall(nodes.target))


def locale_apply(self, **kwargs):
    global _page
    _page = _Translating(self.document)
    try:
        return _ORIGINAL["Locale.apply"](self, **kwargs)
    finally:
        _page = None


def extract_messages(doctree):
    page = _page
    if page is None or doctree is not page.document:
        yield from _ORIGINAL["extract_messages"](doctree)
        return
    page.walk += 1
    try:
        for node, msg in _ORIGINAL["extract_messages"](doctree):
            page.node = node
            yield node, msg
    finally:
        page.node = None


def publish_msgstr(source, source_path, source_line, **kwargs):
    page = _page
    if page is None or page.node is None or page.walk not in (1, 2):
        return _ORIGINAL["_publish_msgstr"](source, source_path, source_line, **kwargs)
    key = (id(page.node), source)
    if page.walk == 2 and (patch := page.first_walk.pop(key, None)) is not None:
        return patch
    patch = _ORIGINAL["_publish_msgstr"](source, source_path, source_line, **kwargs)
    if page.refname_targets is False and _has_refname_target(patch):
        page.refname_targets = True
    if page.walk == 1:
        page.first_walk[key] = patch
    return patch


class TitleTargetMatcher(NodeMatcher):
    """Sphinx's matcher, except that the search of a whole page for targets naming a title's old
    name finds nothing at once on a page that has no target with a refname at all."""

    def findall(self, node):
        page = _page
        if (
            page is not None
            and node is page.document
            and self.classes == (nodes.target,)
            and set(self.attrs) == {"refname"}
        ):
            if page.refname_targets is None:
                page.refname_targets = _has_refname_target(node)
            if not page.refname_targets:
                return iter(())
        return super().findall(node)


def read_parallel(self, docnames, nproc):
    if len(docnames) < SMALL:
        return self._read_serial(docnames)
    return _ORIGINAL["_read_parallel"](self, docnames, nproc)


def write_parallel(self, docnames, nproc):
    if len(docnames) < SMALL:
        return self._write_serial(docnames)
    return _ORIGINAL["_write_parallel"](self, docnames, max(nproc, self._app.parallel))


def enable() -> None:
    myst_base.make_document = make_document
    myst_sphinx.create_md_parser = create_md_parser
    sphinx_i18n._publish_msgstr = publish_msgstr
    sphinx_i18n.extract_messages = extract_messages
    sphinx_i18n.NodeMatcher = TitleTargetMatcher
    sphinx_i18n.Locale.apply = locale_apply
    Builder._read_parallel = read_parallel
    Builder._write_parallel = write_parallel


def disable() -> None:
    myst_base.make_document = _ORIGINAL["make_document"]
    myst_sphinx.create_md_parser = _ORIGINAL["create_md_parser"]
    sphinx_i18n._publish_msgstr = _ORIGINAL["_publish_msgstr"]
    sphinx_i18n.extract_messages = _ORIGINAL["extract_messages"]
    sphinx_i18n.NodeMatcher = _ORIGINAL["NodeMatcher"]
    sphinx_i18n.Locale.apply = _ORIGINAL["Locale.apply"]
    Builder._read_parallel = _ORIGINAL["_read_parallel"]
    Builder._write_parallel = _ORIGINAL["_write_parallel"]
    _parsers.clear()


def template_cache(app) -> None:
    """Jinja's bytecode cache for the builder's templates, in the doctree folder."""
    from jinja2 import FileSystemBytecodeCache

    environment = getattr(getattr(app.builder, "templates", None), "environment", None)
    if environment is None or environment.bytecode_cache is not None:
        return
    folder = Path(app.doctreedir) / "insider-templates"
    folder.mkdir(parents=True, exist_ok=True)
    environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


def setup(app):
    enable()
    app.connect("builder-inited", template_cache)
