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
"""

from __future__ import annotations

import copy
from functools import cache

import myst_parser.mdit_to_docutils.base as myst_base
import myst_parser.parsers.sphinx_ as myst_sphinx
from docutils.frontend import get_default_settings
from docutils.utils import new_document

_ORIGINAL = {
    "make_document": myst_base.make_document,
    "create_md_parser": myst_sphinx.create_md_parser,
}


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


def enable() -> None:
    myst_base.make_document = make_document
    myst_sphinx.create_md_parser = create_md_parser


def disable() -> None:
    myst_base.make_document = _ORIGINAL["make_document"]
    myst_sphinx.create_md_parser = _ORIGINAL["create_md_parser"]
    _parsers.clear()


def setup(app):
    enable()
