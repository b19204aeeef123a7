"""The printed book (PDF): chapters and sections where a reader of a book expects them, and
identifiers that stay on the page.

In a LaTeX build Sphinx inlines every toctree where it stands. Our toctrees stand at the end
of a page, inside its last section ("小结"), so the pages they list would come out one level
too deep: a chapter's pages as subsections of its summary. Each toctree is moved up to its
page's top level first. Then the root document (the preface): its title becomes the book's
title and each of its sections would become a chapter of its own, so they are gathered into
one chapter titled 前言 / Preface, followed by the chapters.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.writers.latex import LaTeXTranslator

PREFACE = {"zh_CN": "前言", "en": "Preface"}


def _top_section(node) -> nodes.section | None:
    """The title section of the document a node belongs to.

    Sphinx inlines a document by handing its children to a start_of_file node without
    re-parenting them, so walking up from a node stops at the top of its own document.
    """
    top = None
    parent = node.parent
    while parent is not None and not isinstance(parent, nodes.document):
        if isinstance(parent, nodes.section):
            top = parent
        parent = parent.parent
    return top


def lift_toctrees(doctree) -> list[nodes.compound]:
    """Move every toctree to the top level of its page; return the root page's toctrees."""
    root = next(iter(doctree.findall(nodes.section)), None)
    root_toctrees = []
    for wrapper in list(doctree.findall(nodes.compound)):
        if "toctree-wrapper" not in wrapper["classes"]:
            continue
        top = _top_section(wrapper)
        if top is None:
            continue
        if wrapper.parent is not top:
            wrapper.parent.remove(wrapper)
            top.append(wrapper)
        if top is root:
            root_toctrees.append(wrapper)
    return root_toctrees


def shape_book(app, doctree, docname) -> None:
    if app.builder.format != "latex" or docname != app.config.root_doc:
        return
    chapters = lift_toctrees(doctree)
    root = next(iter(doctree.findall(nodes.section)), None)
    if root is None:
        return
    for chapter in chapters:
        root.remove(chapter)
    body = list(root.children[1:])
    if body:
        preface = nodes.section(ids=["insider-preface"], names=[])
        title = PREFACE.get(app.config.language, PREFACE["en"])
        preface += nodes.title(title, title)
        for child in body:
            root.remove(child)
            preface += child
        root += preface
    root.extend(chapters)


# Inline code is set in one unbreakable box, so Network::ConnectionImpl::closeThroughFilterManager
# runs past the margin. Break points go after the separators of names and paths (::, ., /, _),
# and after - in names (Sphinx writes \sphinxhyphen{} there, which never breaks); nowhere else.
_BREAK_AFTER = re.compile(r"(::|\\_|\\sphinxhyphen\{\}|(?<!\\)[./])(?=[^\s}])")
# In a table column a long CamelCase name (StopAllIterationAndWatermark) may also break between
# its words, and only there; in running text only a part of 20 letters or more does
# (getTypedLbConfigFromLegacyProtoWithoutSubset), a shorter one moves to the next line whole.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A table column also lets a name break before a digit or a bracket (consecutive|5xx|Errors,
# attributes|[].name): the narrowest columns of the reference tables need it.
_TABLE_PARTS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[a-z])(?=[0-9]|\{\[\})")  # LaTeX writes [ as {[}
_LONG_PART = re.compile(r"[A-Za-z0-9]{20,}")
# Plain words joined by underscores in a table cell (rate_limit_quota) break after an underscore.
_TEXT_UNDERSCORE = re.compile(r"(\\_)(?=[A-Za-z])")


class BookLaTeXTranslator(LaTeXTranslator):
    _code_depth = 0

    def visit_literal(self, node):
        self._code_depth += 1
        try:
            super().visit_literal(node)
        except nodes.SkipNode:
            self._code_depth -= 1
            raise

    def depart_literal(self, node):
        super().depart_literal(node)
        self._code_depth -= 1

    def encode(self, text: str) -> str:
        encoded = super().encode(text)
        if self.in_title:
            return encoded
        if self._code_depth:
            encoded = _BREAK_AFTER.sub(r"\1\\allowbreak{}", encoded)
            if self.table is not None:
                encoded = _TABLE_PARTS.sub(r"\\allowbreak{}", encoded)
            else:
                encoded = _LONG_PART.sub(lambda m: _CAMEL.sub(r"\\allowbreak{}", m.group(0)), encoded)
        elif self.table is not None:
            encoded = _TEXT_UNDERSCORE.sub(r"\1\\allowbreak{}", encoded)
        return encoded


def use_book_translator(app) -> None:
    # Only in a LaTeX build: pydata-sphinx-theme wraps whatever translators are registered when
    # the builder starts, and registering ours for every builder would leave the HTML builders
    # without the theme's translator (no table wrappers, no aria-level on captions).
    if app.builder.format == "latex":
        app.set_translator(app.builder.name, BookLaTeXTranslator, override=True)


def setup(app):
    app.connect("doctree-resolved", shape_book)
    app.connect("builder-inited", use_book_translator, priority=100)
